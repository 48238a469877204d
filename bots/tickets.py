"""`/ticket`: file a ticket from a room, and tell the room when a ticket's status changes (工单助手).

- `/ticket 标题` files a ticket about the command itself; `/ticket` (optionally with a title) in reply to a message
  files one about that message: its text is the description, and the title defaults to its first words.
- Filing is idempotent per message: the same command again (retried, or `/ticket` again on the same message) answers
  with the ticket there is.
- Each status change (web client, REST, or the outside ticket system's webhook) is posted once, in order: the runner
  names the reply after the ticket and the change's seq, so a replayed event is stored once (`append_message` is
  idempotent on the reply's client_msg_id).
- Internal: a `/ticket` in an internal note's thread files an internal ticket and answers as an internal note; its
  status changes are posted as internal notes too. Clients never see either.
"""

from __future__ import annotations

from chatserver.events import Event, TicketChanged
from chatserver.models import TICKET_STATUS_NAMES

from .base import ActionRefused, Bot, BotContext, Command, CommandCall

_TITLE_WORDS = 30  # characters of a quoted message used as the default title
_USAGE = "用法：/ticket 标题；或回复一条消息，输入 /ticket（可附标题）。"
_REFUSALS = {
    "ticketing_unavailable": "工单系统暂时无法受理，请稍后重试。",
    "room_read_only": "本会话已结项，不能再提交工单。",
    "not_found": "找不到这条消息。",
}


def default_title(text: str) -> str:
    """The first words of a message, on one line."""
    line = " ".join(text.split())
    return line if len(line) <= _TITLE_WORDS else line[:_TITLE_WORDS].rstrip() + "…"


class TicketBot(Bot):
    name = "tickets"
    display_name = "工单助手"
    commands = (
        Command("ticket", "提交工单（回复一条消息输入 /ticket，即以该消息为工单内容）", args="[标题]", answer="room"),
    )
    events = (TicketChanged,)

    def usage(self) -> str:
        return "输入 /ticket 标题 提交工单，或回复一条消息输入 /ticket；工单状态变化会通知本会话。"

    async def on_command(self, call: CommandCall, ctx: BotContext) -> str | None:
        quoted = None
        if call.message.reply_to is not None:
            quoted = await ctx.message(call.message.reply_to)
            if quoted is None:
                return "找不到所回复的消息，无法提交工单。"
        if quoted is None and not call.args:
            return _USAGE
        title = call.args or default_title(quoted.text if quoted else "")
        try:
            filed = await ctx.file_ticket(
                title, quoted.text if quoted else "", quoted.id if quoted else call.message.id
            )
        except ActionRefused as exc:
            return f"工单提交失败：{_REFUSALS.get(exc.code, exc.message)}"
        if filed.created:
            return f"工单 #{filed.number} 已创建：{filed.title}\n{filed.link}"
        status = TICKET_STATUS_NAMES.get(filed.status, filed.status)
        return f"这条消息已有工单 #{filed.number}（{status}）：{filed.title}\n{filed.link}"

    async def on_event(self, event: Event, ctx: BotContext) -> None:
        if not isinstance(event, TicketChanged) or event.change is None:
            return  # a new ticket: the command's answer has said so
        change = event.change
        before = TICKET_STATUS_NAMES[change.status_from]
        after = TICKET_STATUS_NAMES[change.status_to]
        await ctx.reply(f"工单 #{event.ticket.number} 状态：{before} → {after}")
