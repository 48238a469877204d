"""The delivery desk in a real browser: the expert one-to-one desk, the staff project board, internal notes."""

from __future__ import annotations

import asyncio
from typing import Any

from playwright.async_api import expect

from chatserver.actions import projects

from .conftest import RF_ROOM, XH_ROOM

EXPERT_ROOM = "司库 专家咨询"


async def test_client_asks_an_expert_transfer_close_and_rating(open_user: Any) -> None:
    # Nobody who knows 司库 is online: the client's request waits in the queue.
    client = await open_user("rf.zhou")
    await expect(client.tid("ask-expert-button")).to_have_text("咨询专家")
    await expect(client.tid("nav-board")).to_be_hidden()
    await expect(client.tid("nav-console")).to_be_hidden()
    await client.tid("ask-expert-button").click()
    await expect(client.tid("ask-dialog")).to_be_visible()
    await client.page.locator("[data-testid=ask-product][data-product='司库']").click()
    question = "请问司库系统的资金归集规则如何配置？"
    await client.tid("ask-text").fill(question)
    await client.tid("ask-submit").click()
    await expect(client.tid("ask-dialog")).to_be_hidden()

    await expect(client.tid("chat-title")).to_contain_text(EXPERT_ROOM)
    banner = client.tid("expert-banner")
    await expect(banner).to_have_attribute("data-status", "queued")
    await expect(banner).to_have_attribute("data-position", "1")
    await expect(client.tid("expert-banner-title")).to_have_text("排队中：您当前排在第 1 位")
    await expect(client.room(EXPERT_ROOM).get_by_test_id("session-badge")).to_have_text("排队中")
    await expect(client.message(question)).to_have_count(1)
    await expect(client.tid("internal-checkbox")).to_be_hidden()

    # A 司库 expert signs in: the request is served at once, and both sides see it.
    expert = await open_user("se.lin")
    await expect(client.tid("expert-banner-title")).to_have_text("专家 林静 已接入")
    await expect(banner).to_have_attribute("data-status", "active")
    await expect(client.room(EXPERT_ROOM).get_by_test_id("session-badge")).to_have_text("服务中")

    await expert.tid("nav-console").click()
    session_card = expert.tid("console-session").filter(has_text="周敏")
    await expect(session_card).to_have_count(1)
    await expect(session_card.get_by_test_id("console-org")).to_have_text("瑞丰物流股份有限公司")
    await expect(session_card.get_by_test_id("product-chip")).to_have_text("司库")
    await expect(expert.tid("nav-console-count")).to_have_text("1")
    await session_card.click()
    await expect(expert.tid("chat-title")).to_contain_text(EXPERT_ROOM)
    await expect(expert.tid("message-list")).to_have_attribute("data-loaded", "true")
    await expect(expert.tid("expert-banner-title")).to_have_text("您正在为周敏（瑞丰物流股份有限公司）提供咨询")
    await expect(expert.message(question)).to_have_count(1)

    # They talk.
    answer = "您好，资金归集可以按日设置上划比例，我先为您发一份配置说明。"
    await expert.send(answer)
    await expect(client.message(answer)).to_have_count(1)
    thanks = "好的，谢谢林老师！"
    await client.send(thanks)
    await expect(expert.message(thanks)).to_have_count(1)

    # The expert hands the session to a colleague, with a note the client must never see.
    colleague = await open_user("se.chen")
    note = "客户关注跨行归集，需要银企直连配合"
    await expert.tid("transfer-button").click()
    await expect(expert.tid("transfer-dialog")).to_be_visible()
    await expert.tid("transfer-target").select_option(label="陈思远 · 银企直连、司库")
    await expert.tid("transfer-note").fill(note)
    await expert.tid("transfer-submit").click()
    await expect(expert.tid("chat-notice")).to_have_text("会话已转接，您已不在该会话中。")
    await expect(expert.room(EXPERT_ROOM)).to_have_count(0)

    await expect(client.tid("expert-banner-title")).to_have_text("专家 陈思远 已接入")
    await colleague.open_room(EXPERT_ROOM)
    noted = colleague.messages().filter(has_text=note)
    await expect(noted).to_have_count(1)
    await expect(noted.get_by_test_id("internal-badge")).to_have_text("内部备注")
    await expect(colleague.message(thanks)).to_have_count(1)

    # The colleague closes the session; the client rates it.
    await colleague.tid("close-session-button").click()
    await colleague.tid("close-confirm").click()
    await expect(colleague.tid("expert-actions")).to_be_hidden()
    await expect(colleague.tid("message-input")).to_be_disabled()

    await expect(banner).to_have_attribute("data-status", "closed")
    await expect(client.tid("expert-banner-title")).to_have_text("本次专家会话已结束")
    await expect(client.tid("rating-form")).to_be_visible()
    await expect(client.tid("message-input")).to_be_disabled()
    await expect(client.room(EXPERT_ROOM).get_by_test_id("session-badge")).to_have_text("已结束")
    await client.tid("rating-star").nth(4).click()
    await expect(client.tid("rating-stars")).to_have_attribute("data-value", "5")
    await client.tid("rating-comment").fill("响应很快，讲解清楚")
    await client.tid("rating-submit").click()
    await expect(client.tid("rating-thanks")).to_contain_text("感谢评价")
    await expect(client.tid("rating-thanks-stars")).to_have_attribute("data-rating", "5")
    await expect(client.tid("rating-form")).to_be_hidden()

    # The note never reached the client: not live, not in the history after a reload.
    await client.page.reload()
    await expect(client.tid("message-list")).to_have_attribute("data-loaded", "true")
    await expect(client.tid("rating-thanks")).to_be_visible()
    await expect(client.message(thanks)).to_have_count(1)
    assert note not in await client.page.content()
    assert note not in " ".join(await client.texts())


async def test_project_board_moves_cards_live(server: Any, open_user: Any) -> None:
    staff = await open_user("am.wang")
    await expect(staff.tid("ask-expert-button")).to_be_hidden()
    await staff.tid("nav-board").click()
    board = staff.tid("board")
    await expect(board).to_have_attribute("data-loaded", "true")

    def column(stage: str) -> Any:
        return staff.page.locator(f"[data-testid=board-column][data-stage={stage}]")

    def card(external_id: str) -> Any:
        return staff.page.locator(f"[data-testid=board-card][data-external-id='{external_id}']")

    await expect(column("presales").get_by_test_id("stage-badge")).to_have_text("售前")
    await expect(column("implementation").get_by_test_id("stage-badge")).to_have_text("售中")
    xinghe, ruifeng = card("SMP-2026-0017"), card("SMP-2026-0023")
    await expect(column("implementation").locator("[data-external-id='SMP-2026-0017']")).to_have_count(1)
    await expect(column("presales").locator("[data-external-id='SMP-2026-0023']")).to_have_count(1)
    await expect(ruifeng.get_by_test_id("board-card-name")).to_have_text("司库系统")
    await expect(ruifeng.get_by_test_id("board-card-org")).to_have_text("瑞丰物流股份有限公司")
    await expect(ruifeng.get_by_test_id("product-chip")).to_have_text("司库")
    await expect(xinghe.get_by_test_id("board-card-unstaffed")).to_have_count(0)

    # The service platform moves 瑞丰 into implementation: the card moves on the open board.
    await projects.change_stage(server.services, "SMP-2026-0023", "implementation", delivery_id="t1")
    await expect(column("implementation").locator("[data-external-id='SMP-2026-0023']")).to_have_count(1)
    await expect(column("presales").get_by_test_id("board-card")).to_have_count(0)
    await expect(column("implementation").get_by_test_id("board-column-count")).to_have_text("2")

    # A card opens its room, whose header shows the stage.
    await ruifeng.click()
    await expect(staff.tid("chat-title")).to_contain_text(RF_ROOM)
    await expect(staff.tid("chat-stage").get_by_test_id("stage-badge")).to_have_text("售中")

    # 星河 goes through after-sales to closed while its room is open: read-only, input disabled with a notice.
    await staff.open_room(XH_ROOM)
    await expect(staff.tid("message-input")).to_be_enabled()
    await projects.change_stage(server.services, "SMP-2026-0017", "aftersales", delivery_id="t2")
    await expect(staff.tid("chat-stage").get_by_test_id("stage-badge")).to_have_text("售后")
    await projects.change_stage(server.services, "SMP-2026-0017", "closed", delivery_id="t3")
    await expect(staff.tid("chat-stage").get_by_test_id("stage-badge")).to_have_text("结项")
    await expect(staff.tid("readonly-banner")).to_have_text("该项目已结项，会话为只读存档。")
    await expect(staff.tid("message-input")).to_be_disabled()
    await expect(staff.tid("send-button")).to_be_disabled()

    await staff.tid("nav-board").click()
    await expect(column("closed").locator("[data-external-id='SMP-2026-0017']")).to_have_count(1)

    # The English board.
    await staff.tid("lang-switch").click()
    await expect(column("closed").get_by_test_id("stage-badge")).to_have_text("Closed")
    await expect(staff.tid("nav-board")).to_have_text("Project board")


async def test_internal_notes_never_reach_the_client(open_user: Any) -> None:
    staff, client = await asyncio.gather(open_user("am.wang"), open_user("xh.li"))
    await staff.open_room(XH_ROOM)
    await client.open_room(XH_ROOM)
    await expect(staff.tid("internal-checkbox")).to_be_visible()
    await expect(client.tid("internal-checkbox")).to_be_hidden()
    assert await client.tid("internal-checkbox").count() == 1  # in the page, never shown

    note = "内部：该客户授信额度待审批，暂勿承诺上线日期"
    await staff.tid("internal-checkbox").check()
    await staff.send(note)
    public = "李总，联调环境已准备好，明天上午可以开始。"
    await staff.send(public)

    await expect(client.message(public)).to_have_count(1)
    mine = staff.message(note)
    await expect(mine.get_by_test_id("internal-badge")).to_have_text("内部备注")
    await expect(staff.message(public).get_by_test_id("internal-badge")).to_have_count(0)
    # The checkbox resets after each send: the next message is public unless ticked again.
    await expect(staff.tid("internal-checkbox")).not_to_be_checked()

    # The client read the public message (the room is open): the staff member's receipt shows it,
    # also after a reload, from the members' read markers.
    await expect(staff.message(public).get_by_test_id("read-receipt")).not_to_have_attribute("data-count", "0")
    await staff.page.reload()
    await expect(staff.tid("message-list")).to_have_attribute("data-loaded", "true")
    await expect(staff.message(public).get_by_test_id("read-receipt")).not_to_have_attribute("data-count", "0")

    # Nowhere on the client's side: not live, not in the room list preview, not after a reload.
    await expect(client.room(XH_ROOM).get_by_test_id("room-preview")).to_contain_text(public[:6])
    await client.page.reload()
    await expect(client.tid("message-list")).to_have_attribute("data-loaded", "true")
    await expect(client.message(public)).to_have_count(1)
    assert note not in await client.page.content()
    await expect(client.tid("internal-badge")).to_have_count(0)
