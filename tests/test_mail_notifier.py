"""Mention emails end to end: the real server on an ephemeral port, real Socket.IO clients, a real SMTP server.

The batch delay is short (0.2 s) so the tests wait little; "nothing was sent" is checked by waiting until the
server has dealt with every pending mention (the store says so), never by sleeping long."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from chatserver.actions import messages
from tests.conftest import ChatClient, RunningServer, ServerFactory, room_id_by_title
from tests.smtp import LocalSmtp

DELAY = 0.2
PUBLIC = "http://chat.example"
EMAILS = {"xh.li": "li.na@xinghe.example", "xh.sun": "sun.hao@xinghe.example", "se.chen": "chen@yunfan-bank.example"}

Clients = Callable[..., Any]


async def mail_server(server_factory: ServerFactory, smtp: LocalSmtp, **overrides: Any) -> RunningServer:
    srv: RunningServer = await server_factory(
        mail_smtp_host=smtp.host,
        mail_smtp_port=smtp.port,
        mail_smtp_security="none",
        mail_mention_delay_seconds=overrides.pop("delay", DELAY),
        public_url=PUBLIC,
        **overrides,
    )
    for username, address in EMAILS.items():
        user = await srv.services.store.get_user_by_username(username)
        assert user is not None
        await srv.services.store.update_user(user.id, email=address)
    return srv


async def send(client: ChatClient, room_id: str, text: str, **extra: Any) -> dict[str, Any]:
    ack = await client.call(
        "send_message", {"room_id": room_id, "text": text, "client_msg_id": f"c-{time.monotonic_ns()}", **extra}
    )
    assert ack["ok"], ack
    message: dict[str, Any] = ack["message"]
    return message


async def settled(srv: RunningServer, timeout: float = 5) -> None:
    """Wait until no mention email is pending any more (sent or dropped)."""
    deadline = time.monotonic() + timeout
    while await srv.services.store.list_mention_emails(state="pending"):
        assert time.monotonic() < deadline, "mention emails still pending"
        await asyncio.sleep(0.02)


async def test_an_away_member_mentioned_twice_gets_one_email_listing_both(
    server_factory: ServerFactory, smtp_server: LocalSmtp, clients: Clients
) -> None:
    srv = await mail_server(server_factory, smtp_server)
    wang = await clients(srv, "am.wang")
    room = await room_id_by_title(wang, "星河")

    first = await send(wang, room, "@李娜 测试环境的证书已经发出，请查收。")
    await send(wang, room, "@李娜 另外，生产环境的接入申请也请尽快提交。")
    assert first["mentions"] == [await _id(srv, "xh.li")]

    [email] = await smtp_server.wait_for(1)
    await settled(srv)
    assert smtp_server.received == [email]
    assert email.rcpt_tos == ["li.na@xinghe.example"]
    assert email.subject == "【云顾问】有 2 条消息提到了你"
    assert email.message["To"].addresses[0].display_name == "李娜"
    for part in (email.part("plain"), email.part("html")):
        assert part.index("测试环境的证书已经发出") < part.index("生产环境的接入申请")
        assert f"{PUBLIC}/#room={room}" in part
        assert "王晓明" in part
    assert email.message["Auto-Submitted"] == "auto-generated"


async def test_a_member_who_reads_the_messages_meanwhile_gets_no_email(
    server_factory: ServerFactory, smtp_server: LocalSmtp, clients: Clients
) -> None:
    srv = await mail_server(server_factory, smtp_server, delay=1.0)
    wang = await clients(srv, "am.wang")
    room = await room_id_by_title(wang, "星河")
    message = await send(wang, room, "@李娜 请确认一下联调时间。")

    li = await clients(srv, "xh.li")  # she opens the app, reads, and leaves before the batch is due
    assert (await li.call("mark_read", {"room_id": room, "seq": message["seq"]}))["ok"]
    await li.disconnect()
    await settled(srv)

    [dropped] = await srv.services.store.list_mention_emails(state="skipped")
    assert (dropped.user_id, dropped.message_id) == (li.user_id, message["id"])
    assert await srv.services.store.list_mention_emails(state="sent") == []
    assert smtp_server.received == []


async def test_a_deleted_message_is_not_listed(
    server_factory: ServerFactory, smtp_server: LocalSmtp, clients: Clients
) -> None:
    srv = await mail_server(server_factory, smtp_server, delay=0.5)
    wang = await clients(srv, "am.wang")
    room = await room_id_by_title(wang, "星河")
    doomed = await send(wang, room, "@李娜 这条发错了")
    await send(wang, room, "@李娜 请查收对账文件。")
    assert (await wang.call("delete_message", {"message_id": doomed["id"]}))["ok"]

    [email] = await smtp_server.wait_for(1)
    await settled(srv)
    assert "请查收对账文件" in email.part("plain")
    assert "发错了" not in email.part("plain") and "发错了" not in email.part("html")
    assert email.subject == "【云顾问】王晓明 在「星河制造集团有限公司 · 银企直连」中提到了你"


async def test_a_client_is_never_emailed_about_an_internal_note(
    server_factory: ServerFactory, smtp_server: LocalSmtp, clients: Clients
) -> None:
    srv = await mail_server(server_factory, smtp_server)
    wang = await clients(srv, "am.wang")
    room = await room_id_by_title(wang, "星河")

    note = await send(wang, room, "@李娜 @陈思远 内部：报价先别发给客户", internal=True)

    assert note["mentions"] == [await _id(srv, "se.chen")]
    [email] = await smtp_server.wait_for(1)
    await settled(srv)
    assert smtp_server.received == [email]
    assert email.rcpt_tos == ["chen@yunfan-bank.example"]
    assert "报价先别发给客户" in email.part("plain")
    assert smtp_server.to("li.na@xinghe.example") == []


async def test_a_member_with_an_open_connection_gets_no_email(
    server_factory: ServerFactory, smtp_server: LocalSmtp, clients: Clients
) -> None:
    srv = await mail_server(server_factory, smtp_server)
    wang = await clients(srv, "am.wang")
    li = await clients(srv, "xh.li")
    room = await room_id_by_title(wang, "星河")

    await send(wang, room, "@李娜 @孙浩 明天上午十点联调。")

    await li.wait_for("message", lambda m: "联调" in m["text"])
    [email] = await smtp_server.wait_for(1)
    await settled(srv)
    assert [r.rcpt_tos for r in smtp_server.received] == [["sun.hao@xinghe.example"]]
    assert email.subject.startswith("【云顾问】王晓明 在")


async def test_the_same_message_is_never_emailed_twice_across_a_restart_and_an_edit(
    server_factory: ServerFactory, smtp_server: LocalSmtp, clients: Clients
) -> None:
    srv = await mail_server(server_factory, smtp_server, delay=0.5)
    wang = await clients(srv, "am.wang")
    room = await room_id_by_title(wang, "星河")
    message = await send(wang, room, "@李娜 请看附件。")
    await wang.disconnect()
    await srv.stop()  # before the batch is due: the pending mention is in the store

    again = await mail_server(server_factory, smtp_server, delay=0.5)
    [email] = await smtp_server.wait_for(1)
    assert email.rcpt_tos == ["li.na@xinghe.example"]

    wang = await clients(again, "am.wang")
    ack = await wang.call("edit_message", {"message_id": message["id"], "text": "@李娜 @孙浩 请看附件（已更新）。"})
    assert ack["ok"] and ack["message"]["mentions"] == [await _id(again, "xh.li"), await _id(again, "xh.sun")]
    [_, to_sun] = await smtp_server.wait_for(2)
    await settled(again)
    assert to_sun.rcpt_tos == ["sun.hao@xinghe.example"]
    assert len(smtp_server.to("li.na@xinghe.example")) == 1

    await again.stop()
    third = await mail_server(server_factory, smtp_server, delay=0.0)
    await settled(third)
    assert len(smtp_server.received) == 2


async def test_a_failed_send_is_tried_again_and_nothing_is_lost(
    server_factory: ServerFactory, smtp_server: LocalSmtp, clients: Clients
) -> None:
    smtp_server.refuse = 1
    srv = await mail_server(server_factory, smtp_server, mail_retry_seconds=0.2)
    wang = await clients(srv, "am.wang")
    room = await room_id_by_title(wang, "星河")

    await send(wang, room, "@李娜 证书快过期了。")

    [email] = await smtp_server.wait_for(1)
    await settled(srv)
    assert "证书快过期了" in email.part("plain")
    assert smtp_server.refuse == 0 and len(smtp_server.received) == 1


async def test_without_smtp_the_email_is_written_to_the_outbox(server_factory: ServerFactory, clients: Clients) -> None:
    srv: RunningServer = await server_factory(mail_mention_delay_seconds=0.0)
    li = await srv.services.store.get_user_by_username("xh.li")
    assert li is not None
    await srv.services.store.update_user(li.id, email="li.na@xinghe.example")
    wang = await clients(srv, "am.wang")
    room = await room_id_by_title(wang, "星河")

    await send(wang, room, "@李娜 写进发件箱")

    outbox = srv.data_dir / "outbox"
    deadline = time.monotonic() + 5
    while not list(outbox.glob("*.eml")):  # the file appears whole (written aside, then renamed)
        assert time.monotonic() < deadline, "no email in the outbox"
        await asyncio.sleep(0.02)
    [eml] = outbox.glob("*.eml")
    assert b"li.na@xinghe.example" in eml.read_bytes()


async def test_publishing_does_not_wait_for_the_mail_server(
    server_factory: ServerFactory, smtp_server: LocalSmtp
) -> None:
    """The notifier only enqueues: a message's ack never waits for email (the SMTP server is not even read)."""
    srv = await mail_server(server_factory, smtp_server)
    await smtp_server.stop()  # nobody answers on the mail port now
    wang = await srv.services.store.get_user_by_username("am.wang")
    assert wang is not None
    summaries = await srv.services.store.room_summaries(wang.id, include_internal=True)
    [room] = [s.room for s in summaries if "星河" in s.room.title]

    started = time.monotonic()
    for number in range(20):
        message, _ = await messages.send_message(
            srv.services, wang, room_id=room.id, text=f"@李娜 第{number}条", client_msg_id=f"c-{number}"
        )
        assert message.mentions
    assert time.monotonic() - started < 2


async def _id(srv: RunningServer, username: str) -> str:
    user = await srv.services.store.get_user_by_username(username)
    assert user is not None
    return user.id


async def test_a_mention_in_a_reply_quotes_what_it_replies_to_and_internal_notes_are_marked(
    server_factory: ServerFactory, smtp_server: LocalSmtp, clients: Clients
) -> None:
    srv = await mail_server(server_factory, smtp_server)
    wang = await clients(srv, "am.wang")
    li = await clients(srv, "xh.li")
    room = await room_id_by_title(wang, "星河")

    question = await send(li, room, "生产环境的白名单<script>什么时候生效？")
    await send(wang, room, "@陈思远 请帮忙回答一下。", reply_to=question["id"])
    note = await send(wang, room, "内部：这个客户的需求要先评估。")
    await send(wang, room, "@陈思远 看看这条。", reply_to=note["id"], internal=True)

    # One email or two, depending on how the batch window fell: read what arrives until both messages are in.
    deadline = time.monotonic() + 5
    while True:
        emails = smtp_server.to("chen@yunfan-bank.example")
        plain = "".join(e.part("plain") for e in emails)
        html = "".join(e.part("html") for e in emails)
        if ("看看这条" in plain and "请帮忙回答一下" in plain) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert "回复 李娜：生产环境的白名单<script>什么时候生效？" in plain  # the hand-off means little without it
    assert "回复 李娜：生产环境的白名单&lt;script&gt;什么时候生效？" in html and "<script>" not in html
    assert plain.count("【内部备注，客户不可见】") == 1 and "回复 王晓明：内部：这个客户的需求要先评估。" in plain
    assert "内部备注，客户不可见" in html
