"""The expert desk: a client asks for a product expert and gets the least-busy online one, or a place in line;
the expert transfers and closes; the client rates. With real clients, and many requests at once."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import ChatClient, RunningServer
from tests.platform.helpers import HUAYUE, People, user_id


@pytest.fixture
async def people(server: RunningServer) -> AsyncIterator[People]:
    pool = People(server)
    yield pool
    await pool.close()


def cid() -> str:
    return uuid.uuid4().hex


async def ask(client: ChatClient, product: str = "司库", text: str = "资金归集怎么配置？", **extra: Any) -> dict:
    ack = await client.call("request_expert", {"product": product, "text": text, **extra})
    assert ack["ok"], ack
    session: dict = ack["session"]
    return session


async def expert_members(server: RunningServer, room_id: str) -> list[str]:
    return [m.user_id for m in await server.services.store.list_members(room_id) if m.role == "expert"]


async def test_a_request_goes_to_the_least_busy_online_expert_with_the_skill(server, people: People):
    chen = await people.connect("se.chen")  # 银企直连 + 司库
    lin = await people.connect("se.lin")  # 司库
    zhou = await people.connect("rf.zhou")
    li = await people.connect("xh.li")

    first = await ask(zhou, "银企直连", "直连的证书怎么申请？")  # only se.chen knows 银企直连
    assert (first["status"], first["expert"]["name"], first["position"]) == ("active", "陈思远", None)
    second = await ask(li, "司库")  # se.chen has one session, se.lin none

    assert second["status"] == "active"
    assert second["expert"] == {"id": lin.user_id, "name": "林静", "org": "云帆银行交易银行部", "kind": "staff"}
    assert second["client_id"] == li.user_id and second["product"] == "司库"
    live = await li.wait_for("expert_session", lambda s: s["room_id"] == second["room_id"] and s["status"] == "active")
    assert live["expert"]["name"] == "林静"
    added = await lin.wait_for("room_added", lambda r: r["id"] == second["room_id"])
    assert (added["kind"], added["my_role"], added["project"]) == ("expert", "expert", None)
    history = await lin.call("get_history", {"room_id": second["room_id"]})
    assert [m["text"] for m in history["messages"]] == [
        "资金归集怎么配置？",
        "专家 林静（云帆银行交易银行部）已接入，请直接提问。",
    ]
    assert history["messages"][0]["sender"]["id"] == li.user_id
    assert await expert_members(server, second["room_id"]) == [lin.user_id]
    await chen.wait_for("room_added", lambda r: r["id"] == first["room_id"])
    assert all(r["id"] != second["room_id"] for r in chen.events("room_added"))

    # They talk.
    await lin.call("send_message", {"room_id": second["room_id"], "text": "您好，请讲", "client_msg_id": cid()})
    await li.wait_for("message", lambda m: m["text"] == "您好，请讲")

    # Asking again for the same product while the session is open finds the same session.
    again = await ask(li, "司库", "还在吗？")
    assert again["room_id"] == second["room_id"]
    assert len(await server.services.store.list_expert_sessions(client_id=li.user_id)) == 1


async def test_an_offline_expert_or_one_without_the_skill_is_not_assigned(server, people: People):
    lin = await people.connect("se.lin")  # online, but no 银企直连; se.chen has it but is offline
    li = await people.connect("xh.li")
    session = await ask(li, "银企直连")
    assert (session["status"], session["expert"], session["position"]) == ("queued", None, 1)
    await asyncio.sleep(0.1)
    assert lin.events("room_added") == []


async def test_without_an_expert_online_requests_queue_and_are_served_when_one_connects(server, people: People):
    li, sun, zhou = [await people.connect(name) for name in ("xh.li", "xh.sun", "rf.zhou")]
    sessions = [await ask(client, "司库", f"问题{n}") for n, client in enumerate((li, sun, zhou), start=1)]
    assert [(s["status"], s["position"]) for s in sessions] == [("queued", 1), ("queued", 2), ("queued", 3)]
    await zhou.wait_for(
        "queue_position", lambda p: p == {"room_id": sessions[2]["room_id"], "product": "司库", "position": 3}
    )

    lin = await people.connect("se.lin")  # max 2 sessions: serves the first two in line

    for client, session in ((li, sessions[0]), (sun, sessions[1])):
        live = await client.wait_for(
            "expert_session", lambda s, r=session["room_id"]: s["room_id"] == r and s["status"] == "active"
        )
        assert live["expert"]["id"] == lin.user_id
    moved = await zhou.wait_for("queue_position", lambda p: p["position"] == 1)
    assert moved == {"room_id": sessions[2]["room_id"], "product": "司库", "position": 1}
    for session in sessions[:2]:
        await lin.wait_for("room_added", lambda r, s=session: r["id"] == s["room_id"])
    third = await zhou.call("get_expert_session", {"room_id": sessions[2]["room_id"]})
    assert (third["session"]["status"], third["session"]["position"]) == ("queued", 1)
    console = await lin.call("get_expert_console")
    assert [s["room_id"] for s in console["sessions"]] == [sessions[0]["room_id"], sessions[1]["room_id"]]
    assert [(q["client"]["name"], q["position"]) for q in console["queue"]["司库"]] == [("周敏", 1)]
    assert console["queue"]["银企直连"] == []


async def test_many_requests_at_once_never_overload_an_expert_and_the_queue_keeps_its_order(server, people: People):
    chen = await people.connect("se.chen")  # max 2
    lin = await people.connect("se.lin")  # max 2
    names = [f"hy.c{n:02d}" for n in range(12)]
    for n, name in enumerate(names):
        await people.create_user(name, f"华岳客户{n:02d}", HUAYUE, "client", ["client_member"])
    clients = [await people.connect(name) for name in names]
    by_id = {c.user_id: c for c in clients}

    acks = await asyncio.gather(
        *(c.call("request_expert", {"product": "司库", "text": f"第{n}个问题"}) for n, c in enumerate(clients))
    )

    assert all(a["ok"] for a in acks), acks
    store = server.services.store
    sessions = await store.list_expert_sessions(product="司库")
    assert len(sessions) == 12  # one per request, none twice
    active = [s for s in sessions if s.status == "active"]
    queued = [s for s in sessions if s.status == "queued"]
    assert len(active) == 4 and len(queued) == 8
    assert Counter(s.expert_id for s in active) == {chen.user_id: 2, lin.user_id: 2}
    for s in active:  # one expert per session, in the room and in the store alike
        assert await expert_members(server, s.room_id) == [s.expert_id]
    for s in queued:
        assert await expert_members(server, s.room_id) == []
    # First come, first served: everyone served asked before everyone waiting.
    assert max(s.requested_at for s in active) <= min(s.requested_at for s in queued)
    answered = {a["session"]["room_id"]: a["session"] for a in acks}
    assert [answered[s.room_id]["position"] for s in queued] == list(range(1, 9))
    assert all(answered[s.room_id]["status"] == "active" for s in active)
    for n, s in enumerate(queued, start=1):
        client = by_id[s.client_id]
        await client.wait_for("queue_position", lambda p, r=s.room_id: p["room_id"] == r)
        assert {p["position"] for p in client.events("queue_position")} == {n}
    latest = (await chen.wait_for("expert_queue", lambda q: len(q["queue"]) == 8))["queue"]
    assert [q["room_id"] for q in latest] == [s.room_id for s in queued]

    # Closing sessions serves the queue in order, one freed slot at a time.
    for turn, closer in enumerate((chen, lin, chen)):
        mine = [s for s in await store.list_expert_sessions(status="active", expert_id=closer.user_id)]
        closed = await closer.call("close_session", {"room_id": mine[0].room_id})
        assert closed["ok"] and closed["session"]["status"] == "closed", closed
        served = queued[turn]
        now = await store.get_expert_session(served.room_id)
        assert now is not None and (now.status, now.expert_id) == ("active", closer.user_id)
        await by_id[served.client_id].wait_for(
            "expert_session", lambda s, r=served.room_id: s["room_id"] == r and s["status"] == "active"
        )
        loads = Counter(s.expert_id for s in await store.list_expert_sessions(status="active"))
        assert loads == {chen.user_id: 2, lin.user_id: 2}
        waiting = await store.list_expert_sessions(status="queued", product="司库")
        assert [s.room_id for s in waiting] == [s.room_id for s in queued[turn + 1 :]]
    last = by_id[queued[-1].client_id]
    await last.wait_for("queue_position", lambda p: p["position"] == 5)


async def test_a_transfer_to_another_expert_moves_the_session_and_the_note_stays_internal(server, people: People):
    chen = await people.connect("se.chen")
    li = await people.connect("xh.li")
    session = await ask(li, "司库")
    assert session["expert"]["id"] == chen.user_id
    lin = await people.connect("se.lin")
    room_id = session["room_id"]

    ack = await chen.call(
        "transfer_session", {"room_id": room_id, "to_user_id": lin.user_id, "note": "客户关注资金归集，VIP"}
    )

    assert ack["ok"], ack
    assert (ack["session"]["status"], ack["session"]["expert"]["id"]) == ("active", lin.user_id)
    live = await li.wait_for("expert_session", lambda s: s["room_id"] == room_id and s["expert_id"] == lin.user_id)
    assert live["expert"]["name"] == "林静"
    await chen.wait_for("room_removed", lambda r: r == {"room_id": room_id})
    await lin.wait_for("room_added", lambda r: r["id"] == room_id)
    assert await expert_members(server, room_id) == [lin.user_id]
    assert (await chen.call("get_history", {"room_id": room_id}))["error"]["code"] == "not_found"
    # The new expert reads the note; the client never gets it, live or in history.
    notes = [m for m in (await lin.call("get_history", {"room_id": room_id}))["messages"] if "VIP" in m["text"]]
    assert len(notes) == 1 and notes[0]["internal"] is True and notes[0]["sender"]["id"] == chen.user_id
    await li.wait_for("message", lambda m: "林静" in m["text"])
    assert not [m for m in li.events("message") if "VIP" in m["text"] or m["internal"]]
    assert not [m for m in (await li.call("get_history", {"room_id": room_id}))["messages"] if "VIP" in m["text"]]
    rooms = {r["id"]: r for r in (await li.call("list_rooms"))["rooms"]}
    assert "VIP" not in (rooms[room_id]["last_message"] or {}).get("text", "")
    # The old expert's slot is free again, and the room's talk no longer reaches them.
    assert await server.services.store.list_expert_sessions(status="active", expert_id=chen.user_id) == []
    after = await li.call("send_message", {"room_id": room_id, "text": "林老师好", "client_msg_id": cid()})
    await lin.wait_for("message", lambda m: m["id"] == after["message"]["id"])
    assert after["message"]["id"] not in [m["id"] for m in chen.events("message")]


async def test_a_transfer_back_to_a_product_queue_waits_for_an_expert_of_that_product(server, people: People):
    lin = await people.connect("se.lin")  # 司库 only; se.chen (银企直连) is offline
    li = await people.connect("xh.li")
    session = await ask(li, "司库", "我们其实是想问银企直连")
    room_id = session["room_id"]

    ack = await lin.call("transfer_session", {"room_id": room_id, "product": "银企直连", "note": "需要直连专家"})

    assert ack["ok"], ack
    assert (ack["session"]["status"], ack["session"]["product"], ack["session"]["position"]) == (
        "queued",
        "银企直连",
        1,
    )
    requeued = await li.wait_for("expert_session", lambda s: s["room_id"] == room_id and s["product"] == "银企直连")
    assert (requeued["status"], requeued["expert"], requeued["position"]) == ("queued", None, 1)
    await li.wait_for("queue_position", lambda p: p == {"room_id": room_id, "product": "银企直连", "position": 1})
    await li.wait_for("message", lambda m: m["text"] == "会话已转入专家队列，请稍候。")
    await lin.wait_for("room_removed", lambda r: r["room_id"] == room_id)
    assert await expert_members(server, room_id) == []

    chen = await people.connect("se.chen")

    live = await li.wait_for("expert_session", lambda s: s["room_id"] == room_id and s["expert_id"] == chen.user_id)
    assert live["status"] == "active" and live["product"] == "银企直连"
    await chen.wait_for("room_added", lambda r: r["id"] == room_id)
    history = await chen.call("get_history", {"room_id": room_id})
    assert [m["text"] for m in history["messages"] if m["internal"]] == ["转接备注：需要直连专家"]
    assert not [m for m in li.events("message") if m["internal"]]


async def test_a_transfer_to_an_expert_without_a_free_slot_is_refused_and_changes_nothing(server, people: People):
    await people.admin("PATCH", f"/api/admin/users/{await user_id(server, 'se.lin')}", {"max_sessions": 1})
    lin = await people.connect("se.lin")
    sun = await people.connect("xh.sun")
    assert (await ask(sun, "司库"))["expert"]["id"] == lin.user_id  # se.lin is now full
    chen = await people.connect("se.chen")
    li = await people.connect("xh.li")
    session = await ask(li, "司库")
    assert session["expert"]["id"] == chen.user_id
    before = await server.services.store.get_expert_session(session["room_id"])

    ack = await chen.call("transfer_session", {"room_id": session["room_id"], "to_user_id": lin.user_id, "note": "转"})

    assert ack["ok"] is False and ack["error"]["code"] == "forbidden", ack
    after = await server.services.store.get_expert_session(session["room_id"])
    assert after is not None and before is not None
    assert (after.status, after.expert_id, after.product) == ("active", chen.user_id, "司库")
    assert await expert_members(server, session["room_id"]) == [chen.user_id]
    assert len(await server.services.store.list_expert_sessions(status="active", expert_id=lin.user_id)) == 1
    history = await chen.call("get_history", {"room_id": session["room_id"]})
    assert not [m for m in history["messages"] if m["internal"]]
    await asyncio.sleep(0.1)
    assert lin.events("room_added") == [r for r in lin.events("room_added") if r["id"] != session["room_id"]]


async def test_transfers_that_make_no_sense_are_refused(server, people: People):
    chen = await people.connect("se.chen")
    lin = await people.connect("se.lin")
    li = await people.connect("xh.li")
    wang = await people.connect("am.wang")
    session = await ask(li, "银企直连")
    room_id = session["room_id"]

    async def code(client: ChatClient, payload: dict) -> str:
        ack = await client.call("transfer_session", payload)
        assert ack["ok"] is False, ack
        return str(ack["error"]["code"])

    assert await code(chen, {"room_id": room_id}) == "invalid_payload"
    assert await code(chen, {"room_id": room_id, "to_user_id": lin.user_id, "product": "司库"}) == "invalid_payload"
    assert await code(chen, {"room_id": room_id, "to_user_id": lin.user_id}) == "invalid_payload"  # no 银企直连
    assert await code(chen, {"room_id": room_id, "to_user_id": wang.user_id}) == "invalid_payload"  # no expert
    assert await code(chen, {"room_id": room_id, "to_user_id": chen.user_id}) == "invalid_payload"  # themselves
    assert await code(chen, {"room_id": room_id, "product": "外汇"}) == "invalid_payload"
    assert await code(li, {"room_id": room_id, "product": "司库"}) == "forbidden"  # the client is not the expert
    assert await code(lin, {"room_id": room_id, "product": "司库"}) == "not_found"  # not in the room
    assert await code(chen, {"room_id": "r_0000000000000000", "product": "司库"}) == "not_found"
    now = await server.services.store.get_expert_session(room_id)
    assert now is not None and (now.status, now.expert_id, now.product) == ("active", chen.user_id, "银企直连")


async def test_close_makes_the_room_read_only_and_the_client_rates_once(server, people: People):
    chen = await people.connect("se.chen")
    zhou = await people.connect("rf.zhou")
    wu = await people.connect("rf.wu")
    session = await ask(zhou, "银企直连", "证书过期了怎么办？")
    room_id = session["room_id"]
    early = await zhou.call("rate_session", {"room_id": room_id, "rating": 5})
    assert early["error"]["code"] == "forbidden"  # not closed yet
    assert (await zhou.call("close_session", {"room_id": room_id}))["error"]["code"] == "forbidden"

    closed = await chen.call("close_session", {"room_id": room_id})

    assert closed["ok"] and closed["session"]["status"] == "closed" and closed["session"]["closed_at"].endswith("Z")
    await zhou.wait_for("expert_session", lambda s: s["room_id"] == room_id and s["status"] == "closed")
    await zhou.wait_for("room_updated", lambda r: r["id"] == room_id and r["read_only"] is True)
    await zhou.wait_for("message", lambda m: m["text"] == "本次专家会话已结束，欢迎为本次服务评分（1–5 分）。")
    for member in (zhou, chen):
        sent = await member.call("send_message", {"room_id": room_id, "text": "再问一句", "client_msg_id": cid()})
        assert sent["error"]["code"] == "room_read_only"
    history = await zhou.call("get_history", {"room_id": room_id})
    assert history["messages"][0]["text"] == "证书过期了怎么办？"
    assert (await chen.call("close_session", {"room_id": room_id}))["error"]["code"] == "forbidden"

    for bad in (0, 6, -1, "5", 4.5, None):
        ack = await zhou.call("rate_session", {"room_id": room_id, "rating": bad})
        assert ack["error"]["code"] == "invalid_payload", bad
    assert (await wu.call("rate_session", {"room_id": room_id, "rating": 1}))["error"]["code"] == "not_found"
    assert (await chen.call("rate_session", {"room_id": room_id, "rating": 5}))["error"]["code"] == "not_found"
    too_long = await zhou.call("rate_session", {"room_id": room_id, "rating": 5, "comment": "好" * 1001})
    assert too_long["error"]["code"] == "invalid_payload"

    rated = await zhou.call("rate_session", {"room_id": room_id, "rating": 5, "comment": "  解答很快，谢谢！ "})
    assert rated["ok"] and (rated["session"]["rating"], rated["session"]["comment"]) == (5, "解答很快，谢谢！")
    again = await zhou.call("rate_session", {"room_id": room_id, "rating": 1, "comment": "改成差评"})
    assert again["error"]["code"] == "forbidden"
    stored = await server.services.store.get_expert_session(room_id)
    assert stored is not None and (stored.rating, stored.comment) == (5, "解答很快，谢谢！")

    # A new question for the same product opens a new session.
    fresh = await ask(zhou, "银企直连", "还有一个问题")
    assert fresh["room_id"] != room_id and fresh["status"] == "active"


async def test_staff_can_ask_for_a_client(server, people: People):
    chen = await people.connect("se.chen")
    wang = await people.connect("am.wang")
    li = await people.connect("xh.li")

    session = await ask(wang, "银企直连", "李总想了解直连报文格式", for_client_id=li.user_id)

    assert session["client_id"] == li.user_id and session["status"] == "active"
    room_id = session["room_id"]
    roles = {m.user_id: m.role for m in await server.services.store.list_members(room_id) if m.role != "bot"}
    assert roles == {li.user_id: "client", wang.user_id: "requester", chen.user_id: "expert"}
    await li.wait_for("room_added", lambda r: r["id"] == room_id)
    await li.wait_for("expert_session", lambda s: s["room_id"] == room_id and s["status"] == "active")
    await wang.wait_for("expert_session", lambda s: s["room_id"] == room_id and s["status"] == "active")
    first = (await li.call("get_history", {"room_id": room_id}))["messages"][0]
    assert (first["text"], first["sender"]["id"]) == ("李总想了解直连报文格式", wang.user_id)


async def test_bad_expert_requests_are_refused(server, people: People):
    wang = await people.connect("am.wang")
    li = await people.connect("xh.li")
    zhou_id = await user_id(server, "rf.zhou")

    async def code(client: ChatClient, payload: dict) -> str:
        ack = await client.call("request_expert", payload)
        assert ack["ok"] is False, ack
        return str(ack["error"]["code"])

    assert await code(wang, {"product": "银企直连", "text": "帮客户问"}) == "invalid_payload"  # for whom?
    assert await code(wang, {"product": "银企直连", "text": "x", "for_client_id": "u_0000000000000000"}) == "not_found"
    staff_id = await user_id(server, "ss.liu")
    assert await code(wang, {"product": "银企直连", "text": "x", "for_client_id": staff_id}) == "not_found"
    assert await code(li, {"product": "银企直连", "text": "x", "for_client_id": zhou_id}) == "forbidden"
    assert await code(li, {"product": "外汇", "text": "汇率？"}) == "invalid_payload"
    assert await code(li, {"product": "司库", "text": "   "}) == "empty_text"
    assert await code(li, {"product": "司库"}) == "invalid_payload"
    assert await code(li, {"product": "司库", "text": "x", "room_id": "r_1"}) == "invalid_payload"
    assert await server.services.store.list_expert_sessions() == []
    assert (await li.call("get_expert_console"))["error"]["code"] == "forbidden"


async def test_one_client_asking_twice_at_once_from_two_tabs_gets_one_session(server, people: People):
    await people.connect("se.chen")
    tab_one = await people.connect("xh.li")
    tab_two = await people.connect("xh.li")

    first, second = await asyncio.gather(ask(tab_one, "司库", "问题"), ask(tab_two, "司库", "问题"))

    assert first["room_id"] == second["room_id"]
    sessions = await server.services.store.list_expert_sessions(client_id=tab_one.user_id)
    assert len(sessions) == 1
    assert len(await server.services.store.list_memberships(tab_one.user_id)) == 2  # the 星河 project and this one


async def test_an_admin_outside_the_room_can_transfer_a_session_with_a_note(server, people: People):
    chen = await people.connect("se.chen")
    li = await people.connect("xh.li")
    admin = await people.connect("admin")
    session = await ask(li, "司库")
    lin = await people.connect("se.lin")
    room_id = session["room_id"]

    ack = await admin.call("transfer_session", {"room_id": room_id, "to_user_id": lin.user_id, "note": "陈老师请假"})

    assert ack["ok"], ack
    assert ack["session"]["expert"]["id"] == lin.user_id
    assert await expert_members(server, room_id) == [lin.user_id]
    await chen.wait_for("room_removed", lambda r: r["room_id"] == room_id)
    notes = [m for m in (await lin.call("get_history", {"room_id": room_id}))["messages"] if m["internal"]]
    assert len(notes) == 1 and "陈老师请假" in notes[0]["text"]
    assert not [m for m in (await li.call("get_history", {"room_id": room_id}))["messages"] if m["internal"]]


async def test_raising_an_online_experts_limit_serves_the_queue_at_once(server, people: People):
    lin_id = await user_id(server, "se.lin")
    await people.admin("PATCH", f"/api/admin/users/{lin_id}", {"max_sessions": 1})
    await people.connect("se.lin")
    sun, li = await people.connect("xh.sun"), await people.connect("xh.li")
    assert (await ask(sun, "司库"))["status"] == "active"
    waiting = await ask(li, "司库")
    assert waiting["status"] == "queued"

    await people.admin("PATCH", f"/api/admin/users/{lin_id}", {"max_sessions": 2})

    await li.wait_for(
        "expert_session", lambda s: s["room_id"] == waiting["room_id"] and s["status"] == "active", timeout=1
    )


async def test_a_session_handed_back_to_the_queue_does_not_bounce_to_the_expert_who_handed_it_back(
    server, people: People
):
    """An expert going off shift hands a session back to the queue: it does not come straight back to them, and
    the queue behind it is not held up by that — the freed slot serves the next in line."""
    chen = await people.connect("se.chen")  # max 2
    li, sun, zhou = [await people.connect(n) for n in ("xh.li", "xh.sun", "rf.zhou")]
    mine = await ask(li, "司库", "问题一")
    assert (await ask(sun, "司库", "问题二"))["expert"]["id"] == chen.user_id
    behind = await ask(zhou, "司库", "问题三")
    assert (mine["expert"]["id"], behind["status"]) == (chen.user_id, "queued")

    ack = await chen.call("transfer_session", {"room_id": mine["room_id"], "product": "司库", "note": "我要下班了"})

    assert ack["ok"], ack
    assert (ack["session"]["status"], ack["session"]["expert"], ack["session"]["position"]) == ("queued", None, 1)
    assert await expert_members(server, mine["room_id"]) == []
    served = await zhou.wait_for(
        "expert_session", lambda s: s["room_id"] == behind["room_id"] and s["status"] == "active"
    )
    assert served["expert"]["id"] == chen.user_id
    await chen.disconnect()
    lin = await people.connect("se.lin")
    live = await li.wait_for(
        "expert_session", lambda s: s["room_id"] == mine["room_id"] and s["expert_id"] == lin.user_id
    )
    assert live["status"] == "active"


async def test_disabling_an_expert_puts_their_sessions_back_in_line_for_another(server, people: People):
    lin = await people.connect("se.lin")  # 司库 only
    zhou = await people.connect("rf.zhou")
    session = await ask(zhou, "司库")
    assert session["expert"]["name"] == "林静"

    await people.admin("PATCH", f"/api/admin/users/{lin.user_id}", {"active": False})
    queued = await zhou.wait_for(
        "expert_session", lambda s: s["room_id"] == session["room_id"] and s["status"] == "queued"
    )
    assert queued["expert"] is None and queued["position"] == 1
    assert await expert_members(server, session["room_id"]) == []

    chen = await people.connect("se.chen")  # comes online with 司库 skill: takes the session over
    taken = await zhou.wait_for(
        "expert_session",
        lambda s: s["room_id"] == session["room_id"] and s["status"] == "active" and s["expert"]["id"] != lin.user_id,
    )
    assert taken["expert"]["id"] == chen.user_id


async def test_staff_ask_only_for_clients_they_serve(server, people: People):
    zhang = await people.connect("dev.zhang")  # on 星河's project, not 瑞丰's
    zhou_id = await user_id(server, "rf.zhou")
    li_id = await user_id(server, "xh.li")
    denied = await zhang.call("request_expert", {"product": "司库", "text": "代客户咨询", "for_client_id": zhou_id})
    assert denied["ok"] is False and denied["error"]["code"] == "not_found"
    assert await server.services.store.list_expert_sessions(client_id=zhou_id) == []
    allowed = await zhang.call("request_expert", {"product": "司库", "text": "代李总咨询", "for_client_id": li_id})
    assert allowed["ok"], allowed


async def test_asking_again_while_a_session_is_open_puts_the_new_question_in_it(server, people: People):
    li = await people.connect("xh.li")
    first = await ask(li, "司库", "第一问：资金归集怎么配置？")
    again = await ask(li, "司库", "第二问：预算超支会提醒吗？")
    assert first["room_id"] == again["room_id"]
    texts = [m["text"] for m in (await li.call("get_history", {"room_id": first["room_id"]}))["messages"]]
    assert texts == ["第一问：资金归集怎么配置？", "第二问：预算超支会提醒吗？"]


async def test_a_transfer_to_an_expert_who_is_offline_is_refused(server, people: People):
    chen = await people.connect("se.chen")
    li = await people.connect("xh.li")
    session = await ask(li, "司库")
    assert session["expert"]["id"] == chen.user_id
    lin_id = await user_id(server, "se.lin")  # a 司库 expert, but not signed in
    refused = await chen.call("transfer_session", {"room_id": session["room_id"], "to_user_id": lin_id})
    assert refused["ok"] is False and refused["error"]["code"] == "forbidden"
    still = await server.services.store.get_expert_session(session["room_id"])
    assert still is not None and (still.status, still.expert_id) == ("active", chen.user_id)


async def test_a_refused_transfer_note_leaves_the_session_as_it_was(server, people: People):
    lin = await people.connect("se.lin")
    wu = await people.connect("rf.wu")
    session = await ask(wu, "司库")
    assert session["expert"]["id"] == lin.user_id
    chen = await people.connect("se.chen")  # online with a free slot: a transfer to him could go through
    refused = await lin.call(
        "transfer_session", {"room_id": session["room_id"], "to_user_id": chen.user_id, "note": "客户VIP\x07"}
    )
    assert refused["ok"] is False and refused["error"]["code"] == "invalid_payload"
    still = await server.services.store.get_expert_session(session["room_id"])
    assert still is not None and (still.status, still.expert_id) == ("active", lin.user_id)
    assert await expert_members(server, session["room_id"]) == [lin.user_id]


async def test_staff_asking_again_for_a_client_join_the_session_with_their_question(server, people: People):
    wang = await people.connect("am.wang")  # shares the 瑞丰 room with rf.zhou
    zhou = await people.connect("rf.zhou")
    first = await ask(zhou, "司库", "预算管控怎么配置？")
    again = await ask(wang, "司库", "补充：客户还关心资金归集", for_client_id=zhou.user_id)
    assert again["room_id"] == first["room_id"]
    texts = [m["text"] for m in (await wang.call("get_history", {"room_id": first["room_id"]}))["messages"]]
    assert texts == ["预算管控怎么配置？", "补充：客户还关心资金归集"]


async def test_a_rating_comment_with_control_characters_is_refused(server, people: People):
    lin = await people.connect("se.lin")
    wu = await people.connect("rf.wu")
    session = await ask(wu, "司库")
    assert (await lin.call("close_session", {"room_id": session["room_id"]}))["ok"]
    bad = await wu.call("rate_session", {"room_id": session["room_id"], "rating": 5, "comment": "好\x00"})
    assert bad["ok"] is False and bad["error"]["code"] == "invalid_payload"
    good = await wu.call("rate_session", {"room_id": session["room_id"], "rating": 5, "comment": "很好"})
    assert good["ok"] and good["session"]["rating"] == 5
