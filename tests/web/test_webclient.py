"""The web client in a real browser against the real server: what users see."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from playwright.async_api import expect

from .conftest import RF_ROOM, XH_ROOM, SocketUser, room_id_by_title

XSS = "<img src=x onerror=alert(1)><b>粗体</b>"


async def test_login_errors_logout_and_refused_token(open_user: Any) -> None:
    u = await open_user("am.wang", login=False)
    await u.tid("login-username").fill("am.wang")
    await u.tid("login-password").fill("wrong-password")
    await u.tid("login-submit").click()
    await expect(u.tid("login-error")).to_be_visible()
    await expect(u.tid("login-error")).to_have_text("用户名或密码错误")
    await expect(u.tid("login-form")).to_be_visible()
    assert await u.page.evaluate("sessionStorage.length") == 0

    # The right password then gets in.
    await u.tid("login-password").fill("cloud2026")
    await u.tid("login-submit").click()
    await expect(u.room(XH_ROOM)).to_be_visible()
    await expect(u.tid("current-user-name")).to_have_text("王晓明")
    await u.open_room(XH_ROOM)

    # Logging out forgets the token and clears the page.
    await u.tid("logout-button").click()
    await expect(u.tid("login-form")).to_be_visible()
    await expect(u.tid("room-item")).to_have_count(0)
    await expect(u.messages()).to_have_count(0)
    assert await u.page.evaluate("sessionStorage.getItem('cloudAdvisor.token')") is None

    # A token the server refuses sends the user back to the login form.
    await u.page.evaluate(
        "sessionStorage.setItem('cloudAdvisor.token', 'not-a-valid-token');"
        "sessionStorage.setItem('cloudAdvisor.user', JSON.stringify({id: 'x', name: 'x', kind: 'staff'}))"
    )
    await u.page.reload()
    await expect(u.tid("login-form")).to_be_visible()
    await expect(u.tid("login-notice")).to_have_text("登录已失效，请重新登录")


async def test_chat_between_bank_and_client(open_user: Any) -> None:
    staff, client = await asyncio.gather(open_user("am.wang"), open_user("xh.li"))

    # The client sees only their own project's room; staff see both, with stage badges.
    await expect(client.tid("room-item")).to_have_count(1)
    await expect(staff.room(XH_ROOM).get_by_test_id("stage-badge")).to_have_text("售中")
    await expect(staff.room(RF_ROOM).get_by_test_id("stage-badge")).to_have_text("售前")

    await staff.open_room(XH_ROOM)
    await client.open_room(XH_ROOM)

    # The client is shown online in the staff member's members panel.
    li_na = staff.tid("member-item").filter(has_text="李娜")
    await expect(li_na).to_have_attribute("data-online", "true")
    await expect(li_na).to_contain_text("外部")

    # Typing: shown to the others, not to the typist, and gone once the message is sent.
    await expect(staff.tid("typing-indicator")).to_have_text("")
    await client.tid("message-input").press_sequentially("王经理")
    await expect(staff.tid("typing-indicator")).to_have_text("李娜 正在输入…")
    await expect(client.tid("typing-indicator")).to_have_text("")

    text = "王经理您好，测试环境的证书什么时候能发？"
    await client.send(text)
    got = staff.message(text)
    await expect(got).to_have_count(1)
    await expect(got.get_by_test_id("message-sender")).to_have_text("李娜")
    await expect(got.get_by_test_id("message-org")).to_contain_text("星河制造集团")
    await expect(got.get_by_test_id("external-badge")).to_have_text("外部")
    await expect(got.get_by_test_id("message-time")).to_have_text(re.compile(r"^\d{2}:\d{2}$"))
    # Sent once, shown once on the sender's side too (no pending duplicate left behind).
    await expect(client.message(text)).to_have_count(1)
    await expect(client.tid("message-pending")).to_have_count(0)
    await expect(staff.tid("typing-indicator")).to_have_text("")

    reply = "证书今天下午发到您的邮箱，请查收。"
    await staff.send(reply)
    mine = client.message(reply)
    await expect(mine.get_by_test_id("message-sender")).to_have_text("王晓明")
    await expect(mine.get_by_test_id("external-badge")).to_have_count(0)
    await expect(staff.tid("message-input")).to_have_value("")

    # The client has the room open, so the staff member sees the message as read.
    await expect(staff.message(reply).get_by_test_id("read-receipt")).to_have_attribute("data-count", "1")

    # The client leaves: shown offline.
    await client.context.close()
    await expect(li_na).to_have_attribute("data-online", "false")


async def test_language_switch(open_user: Any) -> None:
    u = await open_user("am.wang", login=False)
    await expect(u.tid("login-submit")).to_have_text("登录")
    await u.tid("lang-switch").click()
    await expect(u.tid("login-submit")).to_have_text("Sign in")
    await expect(u.page.locator("html")).to_have_attribute("lang", "en-GB")

    await u.tid("login-username").fill("am.wang")
    await u.tid("login-password").fill("cloud2026")
    await u.tid("login-submit").click()
    await u.open_room(XH_ROOM)
    await expect(u.tid("send-button")).to_have_text("Send")
    await expect(u.tid("logout-button")).to_have_text("Sign out")
    await expect(u.room(XH_ROOM).get_by_test_id("stage-badge")).to_have_text("Implementation")
    placeholder = "Type a message; Enter to send, Shift+Enter for a new line"
    await expect(u.tid("message-input")).to_have_attribute("placeholder", placeholder)

    # The choice survives a reload (and the session survives it too).
    await u.page.reload()
    await expect(u.tid("send-button")).to_have_text("Send")
    await expect(u.tid("chat-title")).to_contain_text(XH_ROOM)

    await u.tid("lang-switch").click()
    await expect(u.tid("send-button")).to_have_text("发送")
    await expect(u.room(XH_ROOM).get_by_test_id("stage-badge")).to_have_text("售中")
    await expect(u.tid("logout-button")).to_have_text("退出登录")


async def test_unread_count_and_clearing(open_user: Any) -> None:
    staff, client = await asyncio.gather(open_user("am.wang"), open_user("xh.li"))
    # The demo messages from others are unread at first; opening the room reads them.
    badge = staff.room(XH_ROOM).get_by_test_id("unread-badge")
    await expect(badge).to_have_text(re.compile(r"^[1-9]\d*$"))
    await staff.open_room(XH_ROOM)
    await expect(badge).to_have_count(0)
    await staff.open_room(RF_ROOM)
    await client.open_room(XH_ROOM)

    await client.send("第一条：对账文件格式确认")
    await client.send("第二条：请安排联调时间")
    await expect(badge).to_have_text("2")
    await expect(staff.room(XH_ROOM).get_by_test_id("room-preview")).to_contain_text("第二条：请安排联调时间")
    await expect(staff.room(RF_ROOM).get_by_test_id("unread-badge")).to_have_count(0)

    await staff.open_room(XH_ROOM)
    await expect(badge).to_have_count(0)
    await expect(staff.message("第二条：请安排联调时间")).to_have_count(1)

    # Read on the server too: a reload shows no unread count.
    await staff.page.reload()
    await expect(staff.room(XH_ROOM)).to_be_visible()
    await expect(staff.tid("connection-status")).to_have_attribute("data-state", "online")
    await expect(staff.room(XH_ROOM).get_by_test_id("unread-badge")).to_have_count(0)


async def test_untrusted_text_edit_and_delete(open_user: Any) -> None:
    a, b = await asyncio.gather(open_user("am.wang"), open_user("xh.li"))
    dialogs: list[str] = []

    async def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    for u in (a, b):
        u.page.on("dialog", on_dialog)
    await a.open_room(XH_ROOM)
    await b.open_room(XH_ROOM)

    # Markup in a message is shown literally and creates no element.
    await b.send(XSS)
    for u in (a, b):
        msg = u.message(XSS)
        await expect(msg).to_have_count(1)
        await expect(msg.get_by_test_id("message-text")).to_have_text(XSS)
        assert await u.tid("message-list").locator("img, b").count() == 0
        assert await u.page.locator("img").count() == 0
        await expect(u.room(XH_ROOM).get_by_test_id("room-preview")).to_contain_text("<b>粗体</b>")

    # Editing and deleting one's own messages; the other side sees both.

    await a.send("联调时间定在周三上午")
    await a.send("这条消息稍后撤回")
    await expect(b.message("这条消息稍后撤回")).to_have_count(1)

    # Only one's own messages can be edited: the client sees a reply button but no edit button.
    theirs = b.message("联调时间定在周三上午")
    await theirs.hover()
    await expect(theirs.get_by_test_id("reply-button")).to_be_visible()
    await expect(theirs.get_by_test_id("edit-button")).to_have_count(0)
    await expect(theirs.get_by_test_id("delete-button")).to_have_count(0)

    mine = a.message("联调时间定在周三上午")
    await mine.hover()
    await mine.get_by_test_id("edit-button").click()
    await a.tid("edit-input").fill("联调时间改为周四下午")
    await a.tid("edit-input").press("Enter")

    edited = b.message("联调时间改为周四下午")
    await expect(edited).to_have_count(1)
    await expect(edited.get_by_test_id("edited-marker")).to_have_text("(已编辑)")
    await expect(b.message("联调时间定在周三上午")).to_have_count(0)
    await expect(a.message("联调时间改为周四下午").get_by_test_id("edited-marker")).to_be_visible()

    doomed = a.message("这条消息稍后撤回")
    doomed_id = await doomed.get_attribute("data-id")
    await doomed.hover()
    await doomed.get_by_test_id("delete-button").click()
    await a.tid("delete-confirm-button").click()
    for u in (a, b):
        await expect(u.message("这条消息稍后撤回")).to_have_count(0)
        await expect(u.tid("message-deleted")).to_have_count(1)
        await expect(u.tid("message-deleted")).to_have_text("消息已删除")
    # The tombstone keeps the message's place.
    for u in (a, b):
        await expect(u.tid("message-deleted").locator("xpath=ancestor::li[1]")).to_have_attribute("data-id", doomed_id)
        await u.assert_shown_once_in_order([XSS, "联调时间改为周四下午"])
    assert dialogs == []


async def test_catch_up_after_network_drop_and_server_restart(open_user: Any, restart_server: Any) -> None:
    a, b = await asyncio.gather(open_user("am.wang"), open_user("xh.li"))
    await a.open_room(XH_ROOM)
    await b.open_room(XH_ROOM)
    await a.send("断线前的消息")
    await expect(b.message("断线前的消息")).to_have_count(1)

    # 1. B's network drops; A writes; B writes too (it waits, shown as sending); B comes back.
    await b.context.set_offline(True)
    await expect(b.tid("connection-status")).to_have_attribute("data-state", "offline")
    texts = [f"离线期间消息 {i:02d}" for i in range(1, 8)]
    for text in texts:
        await a.send(text)
        await expect(a.message(text).get_by_test_id("read-receipt")).to_be_visible()
    await b.send("客户断网时写的消息")
    await expect(b.tid("message-pending")).to_contain_text("客户断网时写的消息")
    await b.context.set_offline(False)
    await expect(b.tid("connection-status")).to_have_attribute("data-state", "online", timeout=15_000)

    for text in texts:
        await expect(b.message(text)).to_have_count(1)
    for u in (a, b):
        await expect(u.message("客户断网时写的消息")).to_have_count(1)
    await expect(b.tid("message-pending")).to_have_count(0)
    await b.assert_shown_once_in_order(["断线前的消息", *texts, "客户断网时写的消息"])

    # Live delivery works again, still exactly once.
    await a.send("重连后的消息")
    await expect(b.message("重连后的消息")).to_have_count(1)
    await b.assert_shown_once_in_order(["断线前的消息", *texts, "客户断网时写的消息", "重连后的消息"])

    # 2. The server restarts while B is offline; A reconnects by itself and writes; then B is back.
    await b.context.set_offline(True)
    await restart_server()
    await expect(a.tid("connection-status")).to_have_attribute("data-state", "online", timeout=15_000)
    after_restart = [f"重启后消息 {i}" for i in range(1, 4)]
    for text in after_restart:
        await a.send(text)
        await expect(a.message(text).get_by_test_id("read-receipt")).to_be_visible()
    await b.context.set_offline(False)
    await expect(b.tid("connection-status")).to_have_attribute("data-state", "online", timeout=15_000)
    for text in after_restart:
        await expect(b.message(text)).to_have_count(1)
    await b.assert_shown_once_in_order(["重连后的消息", *after_restart])
    # Still signed in (the token outlives a restart), and live both ways.
    await b.send("重启后客户回复")
    await expect(a.message("重启后客户回复")).to_have_count(1)
    await a.assert_shown_once_in_order([*after_restart, "重启后客户回复"])
    # Close the browsers before the server stops, as users would.
    await asyncio.gather(a.context.close(), b.context.close())


async def test_scrolling_back_loads_older_messages(server: Any, open_user: Any) -> None:
    total = 65
    texts = [f"历史消息 {i:03d}" for i in range(1, total + 1)]
    # Four colleagues take turns (one after another, so the order is known), which keeps each
    # of them under the per-user send rate limit.
    seeders = [SocketUser(server.url, name) for name in ("se.chen", "ss.liu", "dev.zhang", "xh.sun")]
    await asyncio.gather(*(s.__aenter__() for s in seeders))
    try:
        room_id = await room_id_by_title(server.url, seeders[0].token, XH_ROOM)
        existing = len((await seeders[0].call("get_history", {"room_id": room_id, "limit": 100}))["messages"])
        for i, text in enumerate(texts):
            await seeders[i % len(seeders)].send(room_id, text)
    finally:
        await asyncio.gather(*(s.__aexit__(None, None, None) for s in seeders))

    u = await open_user("am.wang")
    await u.open_room(XH_ROOM)
    # The newest page: the last message is in view, the first is not loaded yet.
    await expect(u.message(f"历史消息 {total:03d}")).to_be_in_viewport()
    await expect(u.messages()).to_have_count(50)
    await expect(u.message("历史消息 001")).to_have_count(0)

    # Scroll to the top: the older page is loaded above, and the view stays where it was.
    first_of_page = texts[-50]
    await expect(u.messages().first.get_by_test_id("message-text")).to_have_text(first_of_page)
    anchor = u.message(first_of_page)
    await u.tid("message-list").evaluate("el => { el.scrollTop = 0; }")
    await expect(u.message(texts[0])).to_have_count(1)
    await expect(u.tid("history-status")).to_have_attribute("data-state", "noOlder")
    await expect(anchor).to_be_in_viewport()
    await expect(u.message("历史消息 001")).not_to_be_in_viewport()

    await u.assert_shown_once_in_order(texts)
    assert await u.messages().count() >= existing + total


async def test_send_errors_and_multiline_input(open_user: Any) -> None:
    u = await open_user("am.wang")
    await u.open_room(XH_ROOM)
    await u.tid("message-input").fill("长" * 10_001)
    await u.tid("send-button").click()
    await expect(u.tid("send-error")).to_contain_text("消息过长")
    await expect(u.tid("retry-button")).to_be_visible()
    await expect(u.messages().filter(has_text="长长长长")).to_have_count(0)
    await u.tid("discard-button").click()
    await expect(u.tid("message-failed")).to_have_count(0)

    # Far too big for one packet: refused here, and the connection stays up.
    await u.tid("message-input").fill("x" * 70_000)
    await u.tid("message-input").press("Enter")
    await expect(u.tid("send-error")).to_contain_text("消息过长")
    await u.tid("discard-button").click()
    await expect(u.tid("connection-status")).to_have_attribute("data-state", "online")

    # Shift+Enter is a new line, Enter sends.
    await u.tid("message-input").press_sequentially("第一行")
    await u.tid("message-input").press("Shift+Enter")
    await u.tid("message-input").press_sequentially("第二行")
    await u.tid("message-input").press("Enter")
    await expect(u.messages().last.get_by_test_id("message-text")).to_contain_text("第二行")
    assert await u.messages().last.get_by_test_id("message-text").text_content() == "第一行\n第二行"
