"""`/help`: the commands this user may use in this room, and what each bot is for."""

from __future__ import annotations

from .base import Bot, BotContext, Command, CommandCall


class HelpBot(Bot):
    name = "help"
    display_name = "命令助手"
    commands = (Command("help", "列出本房间可用的命令", answer="caller"),)
    joins_rooms = False  # answers privately; no need to sit in every member list

    def usage(self) -> str:
        return "输入 /help 查看本房间可用的命令。"

    async def on_command(self, call: CommandCall, ctx: BotContext) -> str | None:
        available = ctx.available_commands(call.caller)
        lines = ["本房间可用的命令："]
        for command in available:
            usage = f"/{command.name}" + (f" {command.args}" if command.args else "")
            where = "仅自己可见" if command.answer == "caller" else "房间内所有人可见"
            lines.append(f"{usage} — {command.help}（{where}）")
        return "\n".join(lines)
