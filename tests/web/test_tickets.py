"""The tickets panel in a real browser: filed with /ticket, shown live to everyone, moved by staff only."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from playwright.async_api import expect

from .conftest import XH_ROOM

TITLE = "<b>证书</b>无法下载"  # shown as text, never as markup


async def test_tickets_panel_live_for_the_room_and_staff_move_them(open_user: Any) -> None:
    staff, client = await asyncio.gather(open_user("am.wang"), open_user("xh.li"))
    await staff.open_room(XH_ROOM)
    await client.open_room(XH_ROOM)
    await expect(client.tid("tickets-empty")).to_be_visible()

    await client.send(f"/ticket {TITLE}")
    for user in (staff, client):
        item = user.tid("ticket-item")
        await expect(item).to_have_count(1)
        await expect(item.get_by_test_id("ticket-number")).to_have_text("#1")
        await expect(item.get_by_test_id("ticket-title")).to_have_text(TITLE)
        await expect(item.get_by_test_id("ticket-status")).to_have_text("待处理")
        await expect(user.messages().filter(has_text="工单 #1 已创建")).to_have_count(1)
        await expect(user.tid("tickets-empty")).to_be_hidden()
    assert await client.tid("ticket-title").evaluate("el => el.children.length") == 0

    # Clients read tickets; only staff get the status selector, offering the allowed moves.
    await expect(client.tid("ticket-status-select")).to_have_count(0)
    select = staff.tid("ticket-status-select")
    options = await select.locator("option").evaluate_all("os => os.map(o => o.value)")
    assert options == ["open", "in_progress", "resolved", "closed"]
    await select.select_option("in_progress")

    for user in (staff, client):
        await expect(user.tid("ticket-status")).to_have_text("处理中")
        await expect(user.messages().filter(has_text="工单 #1 状态：待处理 → 处理中")).to_have_count(1)
    # From in_progress the selector offers what the server allows from there.
    options = await select.locator("option").evaluate_all("os => os.map(o => o.value)")
    assert options == ["in_progress", "open", "resolved", "closed"]

    # The ticket's link shows the message it was filed from.
    await client.tid("ticket-link").click()
    source = client.messages().filter(has=client.page.get_by_test_id("message-text").get_by_text(f"/ticket {TITLE}"))
    await expect(source).to_have_class(re.compile(r"msg-flash"))

    # English.
    await client.tid("lang-switch").click()
    await expect(client.tid("ticket-status")).to_have_text("In progress")
