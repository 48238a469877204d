"""`/ticket`: file a ticket from a room, and tell the room when a ticket's status changes (工单助手).

- `/ticket 标题` files a ticket about the command itself; `/ticket` (optionally with a title) in reply to a message
  files one about that message: its text is the description, and the title defaults to its first words.
- Filing is idempotent per message: the same command again (retried, or `/ticket` again on the same message) answers
  with the ticket there is.
- Each status change (web client, REST, or the outside ticket system's webhook) is posted once, in order: the runner
  names the reply after the ticket and the change's seq, so a replayed event is stored once (`append_message` is
  idempotent on the reply's client_msg_id).
- Internal: a `/ticket` in an internal note's thread files an internal ticket and answers as an internal note; its
  status changes are posted as internal notes too. Clients never see either. Filing is idempotent per message *and*
  visibility: an internal ticket about a client's message does not answer the client's public `/ticket` on it.
- Usage and refusals are told to the caller only (a `notice`), in Chinese; a read-only (closed) room gets no posts.
"""

from __future__ import annotations

from chatserver.events import Event, TicketChanged
from chatserver.models import MAX_TICKET_TITLE_CHARS, TICKET_STATUS_NAMES
from chatserver.text import has_visible

from .base import ActionRefused, Bot, BotContext, Command, CommandCall

_TITLE_WORDS = 30  # characters of a quoted message used as the default title
_USAGE = "请写上标题：/ticket 标题；或回复一条消息，发送 /ticket（可附标题）。"
_REFUSALS = {
    "ticketing_unavailable": "工单系统暂时无法受理，请稍后重试。",
    "room_read_only": "本会话已结项（只读），不能再提交工单。",
    "not_found": "找不到这条消息（可能已被删除），无法提交工单。",
    "forbidden": "你不能在这里提交工单。",
    "invalid_payload": "标题只能是一行普通文字，不能含控制字符等特殊字符，请修改后重试。",
}


def default_title(text: str) -> str:
    """The first words of a message, on one line."""
    line = " ".join(text.split())
    return line if len(line) <= _TITLE_WORDS else line[:_TITLE_WORDS].rstrip() + "…"


def refusal(code: str, title: str) -> str:
    """Why a filing was refused, for the person who asked (in Chinese; the server's messages are English)."""
    if code == "text_too_long":
        length = len(" ".join(title.split()))
        return f"标题最长 {MAX_TICKET_TITLE_CHARS} 个字符（这个标题有 {length} 个），请缩短后重试。"
    if code == "invalid_payload" and not has_visible(title):
        return _USAGE
    return "工单提交失败：" + _REFUSALS.get(code, "请稍后重试。")


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
        """The new ticket is announced to the room (in an internal note's thread: internally). Usage, refusals, and
        anything about an internal ticket asked for outside an internal thread go to the caller only."""
        caller = call.caller.id
        quoted = None
        if call.message.reply_to is not None:
            quoted = await ctx.message(call.message.reply_to)
            if quoted is None:
                await ctx.tell(caller, "找不到所回复的消息（可能已被删除），无法提交工单。")
                return None
        if quoted is None and not call.args:
            await ctx.tell(caller, _USAGE)
            return None
        title = call.args or default_title(quoted.text if quoted else "")
        try:
            filed = await ctx.file_ticket(
                title, quoted.text if quoted else "", quoted.id if quoted else call.message.id
            )
        except ActionRefused as exc:
            await ctx.tell(caller, refusal(exc.code, title))
            return None
        if filed.created:
            answer = f"工单 #{filed.number} 已创建：{filed.title}\n{filed.link}"
        else:
            status = TICKET_STATUS_NAMES.get(filed.status, filed.status)
            answer = f"这条消息已有工单 #{filed.number}（{status}）：{filed.title}\n{filed.link}"
        if filed.internal and not call.message.internal:  # never name an internal ticket to the whole room
            await ctx.tell(caller, f"（内部工单，仅员工可见）{answer}")
            return None
        return answer

    async def on_event(self, event: Event, ctx: BotContext) -> None:
        if not isinstance(event, TicketChanged) or event.change is None:
            return  # a new ticket: the command's answer has said so
        if ctx.room is None or ctx.room.read_only:
            return  # a closed room is a read-only archive: the change is kept and sent as ticket_updated only
        change = event.change
        before = TICKET_STATUS_NAMES[change.status_from]
        after = TICKET_STATUS_NAMES[change.status_to]
        await ctx.reply(f"工单 #{event.ticket.number} 状态：{before} → {after}")
