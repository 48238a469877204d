"""Two members chat in a project room; a third who is not a member sees nothing."""

from __future__ import annotations

import asyncio
import uuid

from tests.conftest import room_id_by_title


def cid() -> str:
    return uuid.uuid4().hex


async def test_members_see_each_others_messages_and_outsiders_see_nothing(server, clients):
    manager = await clients(server, "am.wang")
    client = await clients(server, "xh.li")
    outsider = await clients(server, "rf.zhou")
    room_id = await room_id_by_title(client, "星河")

    ack = await client.call(
        "send_message", {"room_id": room_id, "text": "证书已经上传，请查收。", "client_msg_id": cid()}
    )
    assert ack["ok"] is True
    sent = ack["message"]
    assert sent["sender"] == {"id": client.user_id, "name": "李娜", "org": "星河制造集团有限公司", "kind": "client"}
    assert sent["text"] == "证书已经上传，请查收。"
    assert sent["created_at"].endswith("Z")

    got = await manager.wait_for("message", lambda m: m["id"] == sent["id"])
    assert got == sent
    await asyncio.sleep(0.2)
    assert outsider.events("message") == []
    denied = await outsider.call("get_history", {"room_id": room_id})
    assert denied == {"ok": False, "error": {"code": "not_found", "message": "room not found"}}


async def test_seq_is_strictly_increasing_and_history_pages(server, clients):
    a = await clients(server, "am.wang")
    room_id = await room_id_by_title(a, "星河")
    start = (await a.call("get_history", {"room_id": room_id, "limit": 1}))["messages"][-1]["seq"]
    acks = [
        await a.call("send_message", {"room_id": room_id, "text": f"第{i}条", "client_msg_id": cid()}) for i in range(7)
    ]
    seqs = [ack["message"]["seq"] for ack in acks]
    assert seqs == list(range(start + 1, start + 8))

    newest = await a.call("get_history", {"room_id": room_id, "limit": 3})
    assert [m["seq"] for m in newest["messages"]] == seqs[-3:]
    assert newest["has_more"] is True
    older = await a.call("get_history", {"room_id": room_id, "before_seq": seqs[-3], "limit": 3})
    assert [m["seq"] for m in older["messages"]] == seqs[-6:-3]
    after = await a.call("get_history", {"room_id": room_id, "after_seq": seqs[0], "limit": 100})
    assert [m["seq"] for m in after["messages"]] == seqs[1:]
    assert after["has_more"] is False


async def test_resending_the_same_client_msg_id_returns_the_same_message_once(server, clients):
    a = await clients(server, "am.wang")
    b = await clients(server, "xh.sun")
    room_id = await room_id_by_title(a, "星河")
    payload = {"room_id": room_id, "text": "请确认联调时间", "client_msg_id": "retry-1"}
    first = await a.call("send_message", payload)
    second = await a.call("send_message", payload)
    assert first == second and first["ok"]
    await b.wait_for("message", lambda m: m["id"] == first["message"]["id"])
    await asyncio.sleep(0.2)
    assert len([m for m in b.events("message") if m["client_msg_id"] == "retry-1"]) == 1
    history = await a.call("get_history", {"room_id": room_id, "limit": 100})
    assert [m["client_msg_id"] for m in history["messages"]].count("retry-1") == 1


async def test_quick_sends_keep_their_order(server, clients):
    a = await clients(server, "am.wang")
    b = await clients(server, "ss.liu")
    room_id = await room_id_by_title(a, "星河")
    texts = [f"快速消息{i}" for i in range(15)]
    acks = await asyncio.gather(
        *(a.call("send_message", {"room_id": room_id, "text": t, "client_msg_id": cid()}) for t in texts)
    )
    assert all(ack["ok"] for ack in acks), acks
    by_text = {ack["message"]["text"]: ack["message"]["seq"] for ack in acks}
    assert [by_text[t] for t in texts] == sorted(by_text.values())
    await b.wait_for("message", lambda m: m["text"] == texts[-1])
    received = [m["text"] for m in b.events("message") if m["text"] in by_text]
    assert received == texts
