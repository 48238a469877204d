"""The ticket bot end to end: real server, real Socket.IO clients, REST, and the outside system's stand-in."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from chatserver.events import TicketChanged
from integrations.ticketing.standin import Delivery, StandIn
from tests.conftest import ChatClient, RunningServer, ServerFactory, room_id_by_title
from tests.platform.helpers import SECRET as PLATFORM_SECRET
from tests.platform.helpers import move, rest, sign, token_of

XINGHE = "星河制造"  # demo project room (implementation): am.wang, xh.li, xh.sun, ...
BOT = "工单助手"
TOKEN = "ticketing-token-for-the-tests"
WEBHOOK_SECRET = "ticketing-webhook-secret-0123456789abcdef"
WEBHOOK = "/api/webhooks/tickets"


def from_ticket_bot(fragment: str) -> Any:
    return lambda m: m["sender"]["name"] == BOT and fragment in m["text"]


async def send(client: ChatClient, room_id: str, text: str, **extra: Any) -> dict[str, Any]:
    payload = {"room_id": room_id, "text": text, "client_msg_id": f"c-{time.monotonic_ns()}", **extra}
    ack = await client.call("send_message", payload)
    assert ack["ok"], ack
    message: dict[str, Any] = ack["message"]
    return message


async def tickets_of(server: RunningServer, username: str, room_id: str) -> tuple[int, Any]:
    return await rest(server, "GET", f"/api/rooms/{room_id}/tickets", token=await token_of(server, username))


async def set_status(server: RunningServer, username: str, number: int, status: str) -> tuple[int, Any]:
    token = await token_of(server, username)
    return await rest(server, "PATCH", f"/api/tickets/{number}", token=token, json={"status": status})


async def quiet(seconds: float = 0.4) -> None:
    """Let bots and emits that should not happen have their chance to happen."""
    await asyncio.sleep(seconds)


def bot_texts(client: ChatClient, fragment: str) -> list[str]:
    return [m["text"] for m in client.events("message") if from_ticket_bot(fragment)(m)]


@pytest.fixture
async def standin() -> AsyncIterator[tuple[StandIn, str]]:
    """The outside ticket system's stand-in on an ephemeral port: (stand-in, its URL)."""
    system = StandIn(TOKEN)
    runner = web.AppRunner(system.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield system, f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def http_mode(server_factory: ServerFactory, standin: tuple[StandIn, str]) -> tuple[RunningServer, StandIn]:
    system, url = standin
    server: RunningServer = await server_factory(
        ticketing_url=url, ticketing_token=TOKEN, ticketing_webhook_secret=WEBHOOK_SECRET
    )
    system.webhook_url = server.url + WEBHOOK
    system.webhook_secret = WEBHOOK_SECRET
    return server, system


# built-in mode ----------------------------------------------------------------------------------


async def test_ticket_with_a_title_is_filed_and_everyone_in_the_room_sees_it(
    server: RunningServer, clients: Any
) -> None:
    staff = await clients(server, "am.wang")
    client = await clients(server, "xh.li")
    room_id = await room_id_by_title(staff, XINGHE)

    command = await send(client, room_id, "/ticket 测试环境证书无法下载")
    for person in (staff, client):
        answer = await person.wait_for("message", from_ticket_bot("工单 #1 已创建"))
        assert answer["reply_to"] == command["id"] and answer["sender"]["kind"] == "bot"
        assert "测试环境证书无法下载" in answer["text"]
        assert f"/#room={room_id}&msg={command['id']}" in answer["text"]
        update = await person.wait_for("ticket_updated")
        assert update["number"] == 1 and update["status"] == "open" and update["title"] == "测试环境证书无法下载"

    status, answer = await tickets_of(server, "xh.li", room_id)
    assert status == 200, answer
    [ticket] = answer["tickets"]
    assert ticket["reporter"]["name"] == "李娜" and ticket["source_message_id"] == command["id"]
    assert ticket["description"] == "" and ticket["internal"] is False and ticket["external_key"] is None
    project_id = (await staff.call("list_rooms"))["rooms"]
    assert ticket["project_id"] == next(r["project"]["id"] for r in project_id if r["id"] == room_id)


async def test_a_reply_files_the_quoted_message_and_filing_is_idempotent(server: RunningServer, clients: Any) -> None:
    staff = await clients(server, "am.wang")
    client = await clients(server, "xh.li")
    room_id = await room_id_by_title(staff, XINGHE)
    quoted_text = "对账文件下载接口返回 500，流水号 20261203-0042，请尽快排查一下原因"
    quoted = await send(client, room_id, quoted_text)

    cid = "c-ticket-once"
    payload = {"room_id": room_id, "text": "/ticket", "client_msg_id": cid, "reply_to": quoted["id"]}
    first = await staff.call("send_message", payload)
    await client.wait_for("message", from_ticket_bot("工单 #1 已创建"))
    # The same command retried (same client_msg_id), and /ticket again on the same message: still one ticket.
    retried = await staff.call("send_message", payload)
    assert retried["message"]["id"] == first["message"]["id"]
    await send(client, room_id, "/ticket 再提一次", reply_to=quoted["id"])
    again = await client.wait_for("message", from_ticket_bot("这条消息已有工单 #1"))
    assert "待处理" in again["text"]
    await quiet()
    assert len(bot_texts(client, "已创建")) == 1

    [ticket] = (await tickets_of(server, "am.wang", room_id))[1]["tickets"]
    assert ticket["description"] == quoted_text and ticket["source_message_id"] == quoted["id"]
    assert ticket["title"] == "对账文件下载接口返回 500，流水号 20261203-00…"  # the first words of the quoted text
    assert ticket["reporter"]["name"] == "王晓明"


async def test_usage_and_refusals_are_told_to_the_caller_only_in_chinese(server: RunningServer, clients: Any) -> None:
    staff = await clients(server, "am.wang")
    client = await clients(server, "xh.li")
    room_id = await room_id_by_title(staff, XINGHE)

    async def told(text: str, fragment: str, **extra: Any) -> None:
        before = len(client.events("notice"))
        await send(client, room_id, text, **extra)
        for _ in range(100):
            if len(client.events("notice")) > before:
                break
            await asyncio.sleep(0.05)
        notice = client.events("notice")[before]
        assert fragment in notice["text"] and notice["sender"]["name"] == BOT, notice
        assert not any(ch.isascii() and ch.isalpha() for ch in notice["text"].split("/ticket")[0]), notice

    await told("/ticket", "请写上标题：/ticket 标题")  # no title, not a reply
    await told("/ticket \u200b\u200b", "请写上标题")  # nothing visible
    await told("/ticket " + "长" * 300, "标题最长 200 个字符（这个标题有 300 个）")
    gone = await send(client, room_id, "马上删除")
    ack = await client.call("delete_message", {"message_id": gone["id"]})
    assert ack["ok"], ack
    await told("/ticket", "找不到所回复的消息", reply_to=gone["id"])

    await quiet()
    # Nothing about any of it in the room: the staff member saw no bot message and no notice.
    assert [m for m in staff.events("message") if m["sender"]["name"] == BOT] == []
    assert [m for m in client.events("message") if m["sender"]["name"] == BOT] == []
    assert staff.events("notice") == []
    assert (await tickets_of(server, "am.wang", room_id))[1]["tickets"] == []


async def test_a_ticket_keeps_its_copy_of_a_source_message_deleted_later(server: RunningServer, clients: Any) -> None:
    """The title and description are copies made at filing (docs/protocol.md, Tickets): deleting the message
    later does not withdraw the ticket (in HTTP mode the outside system has its copy anyway)."""
    client = await clients(server, "xh.li")
    room_id = await room_id_by_title(client, XINGHE)
    source = await send(client, room_id, "网银登录页面报错 E1024")
    await send(client, room_id, "/ticket", reply_to=source["id"])
    await client.wait_for("message", from_ticket_bot("工单 #1 已创建"))
    ack = await client.call("delete_message", {"message_id": source["id"]})
    assert ack["ok"], ack
    [ticket] = (await tickets_of(server, "xh.li", room_id))[1]["tickets"]
    assert ticket["description"] == "网银登录页面报错 E1024" and ticket["source_message_id"] == source["id"]


async def test_an_internal_ticket_about_a_clients_message_neither_leaks_nor_blocks_theirs(
    server: RunningServer, clients: Any
) -> None:
    staff = await clients(server, "am.wang")
    client = await clients(server, "xh.li")
    room_id = await room_id_by_title(staff, XINGHE)
    secret = "客户技术能力弱，内部评估需加收实施费"

    public = await send(client, room_id, "我们的测试环境连不上，麻烦看一下")
    await send(staff, room_id, f"/ticket {secret}", reply_to=public["id"], internal=True)
    answer = await staff.wait_for("message", from_ticket_bot("工单 #1 已创建"))
    assert answer["internal"] is True
    # The client's own /ticket on the same message files its own, public ticket.
    await send(client, room_id, "/ticket", reply_to=public["id"])
    mine = await client.wait_for("message", from_ticket_bot("工单 #2 已创建"))
    assert mine["internal"] is False and "我们的测试环境连不上" in mine["text"]
    # Filing again of either visibility answers with the ticket of that visibility.
    await send(staff, room_id, "/ticket", reply_to=public["id"], internal=True)
    again = await staff.wait_for("message", from_ticket_bot("这条消息已有工单 #1"))
    assert again["internal"] is True
    await send(staff, room_id, "/ticket", reply_to=public["id"])
    await client.wait_for("message", from_ticket_bot("这条消息已有工单 #2"))
    code, _ = await set_status(server, "am.wang", 1, "in_progress")
    assert code == 200
    await staff.wait_for("message", from_ticket_bot("工单 #1 状态"))

    await quiet()
    seen_by_client = json.dumps(
        [client.events(e) for e in ("message", "notice", "ticket_updated", "message_edited")], ensure_ascii=False
    )
    assert secret not in seen_by_client and "#1" not in seen_by_client
    assert [t["number"] for t in client.events("ticket_updated")] == [2]
    listed = (await tickets_of(server, "xh.li", room_id))[1]["tickets"]
    assert [(t["number"], t["internal"]) for t in listed] == [(2, False)]
    staff_view = (await tickets_of(server, "am.wang", room_id))[1]["tickets"]
    assert [(t["number"], t["internal"], t["source_message_id"]) for t in staff_view] == [
        (1, True, public["id"]),
        (2, False, public["id"]),
    ]
    code, _ = await rest(server, "GET", "/api/tickets/1", token=await token_of(server, "xh.li"))
    assert code == 404


async def test_status_changes_are_posted_once_each_in_order(server: RunningServer, clients: Any) -> None:
    staff = await clients(server, "am.wang")
    client = await clients(server, "xh.li")
    room_id = await room_id_by_title(staff, XINGHE)
    await send(client, room_id, "/ticket 付款指令回执缺失")
    await client.wait_for("message", from_ticket_bot("已创建"))

    for status in ("in_progress", "resolved"):
        code, answer = await set_status(server, "am.wang", 1, status)
        assert code == 200 and answer["changed"] is True and answer["ticket"]["status"] == status, answer
    await client.wait_for("message", from_ticket_bot("处理中 → 已解决"))
    assert bot_texts(client, "状态：") == ["工单 #1 状态：待处理 → 处理中", "工单 #1 状态：处理中 → 已解决"]
    assert [t["status"] for t in client.events("ticket_updated")] == ["open", "in_progress", "resolved"]

    # The status it has: nothing changes. An illegal move: a clear error, nothing changes.
    code, answer = await set_status(server, "am.wang", 1, "resolved")
    assert code == 200 and answer["changed"] is False
    code, answer = await set_status(server, "am.wang", 1, "open")
    assert code == 409 and answer["error"]["code"] == "invalid_status_change", answer
    # A client may read tickets, never move them.
    code, answer = await set_status(server, "xh.li", 1, "closed")
    assert code == 403 and answer["error"]["code"] == "forbidden"

    # The same change published again (a replay) is still posted once.
    code, view = await rest(server, "GET", "/api/tickets/1", token=await token_of(server, "am.wang"))
    assert [(c["from"], c["to"], c["seq"]) for c in view["ticket"]["changes"]] == [
        ("open", "in_progress", 1),
        ("in_progress", "resolved", 2),
    ]
    assert view["ticket"]["changes"][0]["by"]["name"] == "王晓明"
    store = server.services.store
    ticket = await store.get_ticket(1)
    assert ticket is not None
    changes = await store.list_ticket_changes(ticket.id)
    await server.services.bus.publish(TicketChanged(ticket=ticket, change=changes[-1]))
    await quiet()
    assert bot_texts(client, "状态：") == ["工单 #1 状态：待处理 → 处理中", "工单 #1 状态：处理中 → 已解决"]


async def test_internal_tickets_stay_with_staff(server: RunningServer, clients: Any) -> None:
    staff = await clients(server, "am.wang")
    client = await clients(server, "xh.li")
    room_id = await room_id_by_title(staff, XINGHE)

    await send(staff, room_id, "/ticket 内部：客户证书到期风险", internal=True)
    answer = await staff.wait_for("message", from_ticket_bot("工单 #1 已创建"))
    assert answer["internal"] is True
    assert (await staff.wait_for("ticket_updated"))["internal"] is True
    code, _ = await set_status(server, "am.wang", 1, "in_progress")
    assert code == 200
    change = await staff.wait_for("message", from_ticket_bot("待处理 → 处理中"))
    assert change["internal"] is True

    # The client sees none of it: not the answers, not the updates, not in the list, not by number.
    await send(client, room_id, "/ticket 公开的问题")
    await client.wait_for("message", from_ticket_bot("工单 #2 已创建"))
    await quiet()
    assert all(m["sender"]["name"] != BOT or "#1" not in m["text"] for m in client.events("message"))
    assert [t["number"] for t in client.events("ticket_updated")] == [2]
    assert [t["number"] for t in (await tickets_of(server, "xh.li", room_id))[1]["tickets"]] == [2]
    assert [t["number"] for t in (await tickets_of(server, "am.wang", room_id))[1]["tickets"]] == [1, 2]
    code, answer = await rest(server, "GET", "/api/tickets/1", token=await token_of(server, "xh.li"))
    assert code == 404 and answer["error"]["code"] == "not_found"
    code, answer = await set_status(server, "xh.li", 1, "closed")
    assert code == 404


async def test_another_company_can_neither_list_nor_see_the_tickets(server: RunningServer, clients: Any) -> None:
    client = await clients(server, "xh.li")
    other = await clients(server, "rf.zhou")
    room_id = await room_id_by_title(client, XINGHE)
    await send(client, room_id, "/ticket 星河的问题")
    await client.wait_for("message", from_ticket_bot("已创建"))

    assert (await tickets_of(server, "rf.zhou", room_id))[0] == 404
    code, answer = await rest(server, "GET", "/api/tickets/1", token=await token_of(server, "rf.zhou"))
    assert code == 404 and answer["error"]["code"] == "not_found"
    code, answer = await rest(server, "GET", "/api/tickets/99", token=await token_of(server, "xh.li"))
    assert code == 404  # the same answer as for a ticket one may not see
    await quiet()
    assert other.events("ticket_updated") == []


# HTTP mode: the outside system's stand-in -------------------------------------------------------


async def test_http_mode_files_in_the_outside_system_and_posts_its_changes_once(
    server_factory: ServerFactory, standin: tuple[StandIn, str], clients: Any
) -> None:
    server, system = await http_mode(server_factory, standin)
    staff = await clients(server, "am.wang")
    client = await clients(server, "xh.li")
    room_id = await room_id_by_title(staff, XINGHE)

    quoted = await send(client, room_id, "生产环境付款指令状态一直是处理中")
    await send(staff, room_id, "/ticket 付款状态不更新", reply_to=quoted["id"])
    await client.wait_for("message", from_ticket_bot("工单 #1 已创建"))
    [(key, filed)] = system.tickets.items()
    assert key == "OPS-1" and filed["title"] == "付款状态不更新" and filed["description"] == quoted["text"]
    assert filed["link"] == f"{server.settings.resolved_public_url}/#room={room_id}&msg={quoted['id']}"
    assert filed["project"] == "SMP-2026-0017"  # the platform's id of the demo project
    assert (await tickets_of(server, "xh.li", room_id))[1]["tickets"][0]["external_key"] == "OPS-1"

    # Someone works on it in the outside system: its webhooks move the ticket, posted once each, in order.
    first = await system.set_status("OPS-1", "in_progress")
    second = await system.set_status("OPS-1", "resolved")
    assert first is not None and second is not None and first.status == second.status == 200
    await client.wait_for("message", from_ticket_bot("处理中 → 已解决"))
    # Replays: the same delivery again, and the same news under a new delivery id, change nothing.
    replay = await system.deliver(Delivery(second.body, second.headers))
    assert replay.status == 200
    again = await system.deliver(
        Delivery(second.body, _signed(second.body, delivery_id=uuid.uuid4().hex)),
    )
    assert again.status == 200
    await quiet()
    assert bot_texts(client, "状态：") == ["工单 #1 状态：待处理 → 处理中", "工单 #1 状态：处理中 → 已解决"]

    # A forged webhook: 401, nothing changes.
    forged = json.dumps({"key": "OPS-1", "status": "closed"}).encode()
    headers = _signed(forged)
    headers["X-Signature"] = "sha256=" + "0" * 64
    refused = await system.deliver(Delivery(forged, headers))
    assert refused.status == 401
    ticket = await server.services.store.get_ticket(1)
    assert ticket is not None and ticket.status == "resolved"

    # A change from the web client goes to the outside system first; its webhook back changes nothing more.
    code, answer = await set_status(server, "am.wang", 1, "closed")
    assert code == 200 and answer["changed"] is True
    assert system.tickets["OPS-1"]["status"] == "closed"
    await client.wait_for("message", from_ticket_bot("已解决 → 已关闭"))
    for _ in range(50):
        if len(system.deliveries) == 5:
            break
        await asyncio.sleep(0.05)
    assert system.deliveries[-1].status == 200
    await quiet()
    assert len(bot_texts(client, "状态：")) == 3


async def test_http_mode_failure_files_nothing_and_says_so(
    server_factory: ServerFactory, standin: tuple[StandIn, str], clients: Any
) -> None:
    server, system = await http_mode(server_factory, standin)
    staff = await clients(server, "am.wang")
    room_id = await room_id_by_title(staff, XINGHE)

    system.fail_with = 503
    await send(staff, room_id, "/ticket 系统故障时提交")
    await staff.wait_for("notice", lambda n: "工单提交失败：工单系统暂时无法受理" in n["text"])
    assert (await tickets_of(server, "am.wang", room_id))[1]["tickets"] == []
    assert await server.services.store.get_ticket(1) is None

    system.fail_with = None
    await send(staff, room_id, "/ticket 恢复后提交")
    await staff.wait_for("message", from_ticket_bot("工单 #1 已创建"))
    # A status change the outside system refuses changes nothing here either.
    system.fail_with = 500
    code, answer = await set_status(server, "am.wang", 1, "in_progress")
    assert code == 502 and answer["error"]["code"] == "ticketing_unavailable", answer
    ticket = await server.services.store.get_ticket(1)
    assert ticket is not None and ticket.status == "open" and ticket.change_seq == 0


def _signed(body: bytes, *, delivery_id: str | None = None, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    ts = str(int(time.time()))
    return {
        "Content-Type": "application/json",
        "X-Timestamp": ts,
        "X-Delivery-Id": delivery_id or uuid.uuid4().hex,
        "X-Signature": sign(secret, ts, body),
    }


async def post_webhook(
    server: RunningServer, body: bytes, delivery_id: str, *, secret: str = WEBHOOK_SECRET
) -> tuple[int, Any]:
    """A webhook with a chosen delivery id (so a test can replay it), answered (status, body)."""
    async with aiohttp.ClientSession() as http:
        headers = _signed(body, delivery_id=delivery_id, secret=secret)
        async with http.post(server.url + WEBHOOK, data=body, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)


def change(status: str) -> bytes:
    return json.dumps({"key": "OPS-1", "status": status}).encode()


async def echoes_done(system: StandIn, count: int) -> None:
    """Wait until the stand-in has sent `count` webhooks and had them answered."""
    for _ in range(100):
        if len(system.deliveries) >= count and all(d.status for d in system.deliveries):
            break
        await asyncio.sleep(0.05)
    assert len(system.deliveries) == count, system.deliveries
    assert all(d.status == 200 for d in system.deliveries), [d.status for d in system.deliveries]


async def test_every_authenticated_well_formed_webhook_delivery_is_seen_once(
    server_factory: ServerFactory, standin: tuple[StandIn, str], clients: Any
) -> None:
    server, system = await http_mode(server_factory, standin)
    client = await clients(server, "xh.li")
    room_id = await room_id_by_title(client, XINGHE)
    await send(client, room_id, "/ticket 重放测试")
    await client.wait_for("message", from_ticket_bot("工单 #1 已创建"))

    assert await post_webhook(server, change("resolved"), "d-1") == (
        200,
        {"ok": True, "changed": True, "number": 1, "status": "resolved"},
    )
    # A delivery that changes nothing (the status the ticket has) is seen all the same...
    assert (await post_webhook(server, change("resolved"), "d-2"))[1]["changed"] is False
    code, _ = await set_status(server, "am.wang", 1, "in_progress")  # (its echo comes back: stale, nothing)
    assert code == 200
    await echoes_done(system, 1)
    # ...so replaying it once it would apply changes nothing.
    assert (await post_webhook(server, change("resolved"), "d-2"))[1] == {
        "ok": True,
        "changed": False,
        "number": 1,
        "status": "in_progress",
    }
    # A refused delivery (409: not a move a closed ticket can make) is seen too: no replay after a reopen.
    assert (await set_status(server, "am.wang", 1, "closed"))[0] == 200
    code, answer = await post_webhook(server, change("in_progress"), "d-3")
    assert code == 409 and answer["error"]["code"] == "invalid_status_change"
    assert (await set_status(server, "am.wang", 1, "open"))[0] == 200
    await echoes_done(system, 3)
    code, answer = await post_webhook(server, change("in_progress"), "d-3")
    assert code == 200 and answer["changed"] is False and answer["status"] == "open"
    # Unknown keys are seen too.
    unknown = json.dumps({"key": "OPS-404", "status": "closed"}).encode()
    assert (await post_webhook(server, unknown, "d-4"))[0] == 404
    assert (await post_webhook(server, unknown, "d-4"))[0] == 404

    # Unauthenticated and malformed deliveries claim nothing: their ids remain usable by the real delivery.
    assert (await post_webhook(server, change("resolved"), "d-5", secret="not-the-secret-0123456789abcdef"))[0] == 401
    assert (await post_webhook(server, b'{"key": "OPS-1", "status": "done"}', "d-6"))[0] == 400
    assert (await post_webhook(server, b"{not json", "d-7"))[0] == 400
    assert (await post_webhook(server, change("resolved"), "d-5"))[1]["changed"] is True
    assert (await post_webhook(server, change("closed"), "d-6"))[1]["changed"] is True
    assert (await post_webhook(server, change("open"), "d-7"))[1]["changed"] is True

    code, view = await rest(server, "GET", "/api/tickets/1", token=await token_of(server, "am.wang"))
    assert [(c["from"], c["to"], c["source"]) for c in view["ticket"]["changes"]] == [
        ("open", "resolved", "webhook"),
        ("resolved", "in_progress", "web"),
        ("in_progress", "closed", "web"),
        ("closed", "open", "web"),
        ("open", "resolved", "webhook"),
        ("resolved", "closed", "webhook"),
        ("closed", "open", "webhook"),
    ]
    await client.wait_for("message", from_ticket_bot("已关闭 → 待处理"))
    await quiet()
    assert len(bot_texts(client, "状态：")) == 7


@pytest.mark.parametrize("versions", [True, False], ids=["with-version", "without-version"])
async def test_concurrent_staff_changes_are_heard_once_and_their_echoes_change_nothing(
    server_factory: ServerFactory, standin: tuple[StandIn, str], clients: Any, versions: bool
) -> None:
    server, system = await http_mode(server_factory, standin)
    system.versions = versions
    staff = await clients(server, "am.wang")
    room_id = await room_id_by_title(staff, XINGHE)
    tokens = [await token_of(server, "am.wang"), await token_of(server, "ss.liu")]

    for number in (1, 2, 3):
        key = f"OPS-{number}"
        await send(staff, room_id, f"/ticket 并发状态 {number}")
        await staff.wait_for("message", from_ticket_bot(f"工单 #{number} 已创建"))
        sent = len(system.deliveries)
        answers = await asyncio.gather(
            *(
                rest(server, "PATCH", f"/api/tickets/{number}", token=token, json={"status": status})
                for token, status in zip(tokens, ("in_progress", "resolved"), strict=True)
            )
        )
        assert [code for code, _ in answers] == [200, 200], answers
        await echoes_done(system, sent + 2)  # both echoes came back (in whatever order) and were answered
        await quiet()

        _, view = await rest(server, "GET", f"/api/tickets/{number}", token=tokens[0])
        changes = view["ticket"]["changes"]
        assert [c["source"] for c in changes] == ["web", "web"], changes  # the echoes changed nothing
        assert view["ticket"]["status"] == system.tickets[key]["status"] == changes[-1]["to"]
        names = {"open": "待处理", "in_progress": "处理中", "resolved": "已解决"}
        heard = [t for t in bot_texts(staff, "状态：") if t.startswith(f"工单 #{number} ")]
        assert heard == [f"工单 #{number} 状态：{names[c['from']]} → {names[c['to']]}" for c in changes]


async def test_a_closed_rooms_ticket_follows_the_outside_system_without_posting(
    server_factory: ServerFactory, standin: tuple[StandIn, str], clients: Any
) -> None:
    system, url = standin
    server: RunningServer = await server_factory(
        ticketing_url=url,
        ticketing_token=TOKEN,
        ticketing_webhook_secret=WEBHOOK_SECRET,
        platform_secret=PLATFORM_SECRET,
    )
    system.webhook_url, system.webhook_secret = server.url + WEBHOOK, WEBHOOK_SECRET
    client = await clients(server, "xh.li")
    room_id = await room_id_by_title(client, XINGHE)
    await send(client, room_id, "/ticket 结项前的工单")
    await client.wait_for("message", from_ticket_bot("工单 #1 已创建"))
    for stage in ("aftersales", "closed"):
        code, answer = await move(server, "SMP-2026-0017", stage)
        assert code == 200 and answer["moved"], answer
    await client.wait_for("room_updated", lambda r: r["read_only"])

    # Staff cannot move it here: the room is a read-only archive.
    code, answer = await set_status(server, "am.wang", 1, "resolved")
    assert code == 403 and answer["error"]["code"] == "room_read_only"
    assert system.tickets["OPS-1"]["status"] == "open"
    # The outside system (the system of record) still can: stored, in the history, sent as ticket_updated...
    delivery = await system.set_status("OPS-1", "resolved")
    assert delivery is not None and delivery.status == 200
    update = await client.wait_for("ticket_updated", lambda t: t["status"] == "resolved")
    assert update["change_seq"] == 1
    code, view = await rest(server, "GET", "/api/tickets/1", token=await token_of(server, "xh.li"))
    assert [(c["to"], c["source"]) for c in view["ticket"]["changes"]] == [("resolved", "webhook")]
    # ...and posted nowhere: nothing new in the room.
    await quiet()
    assert bot_texts(client, "状态：") == []
    page = await client.call("get_history", {"room_id": room_id, "limit": 5})
    assert all("状态：" not in m["text"] for m in page["messages"])
