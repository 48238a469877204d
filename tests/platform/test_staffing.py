"""Automatic staffing: entering implementation brings one service specialist and one developer — the right role,
a skill in one of the project's products, the fewest open projects, ties to the one assigned longest ago — and
entering aftersales brings the after-sales staff on duty. Nobody suitable: the room says so, admins see it."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import RunningServer
from tests.platform.helpers import BANK, People, move, project_payload, register, rest

SIKU = ["司库"]


def siku_project(number: int, **changes: object) -> dict[str, object]:
    """A 司库 project whose people are the account manager and one client contact, in presales."""
    return project_payload(
        f"SMP-2026-1{number:03d}",
        name=f"司库系统{number}期",
        products=SIKU,
        people=[
            {"username": "am.wang", "name": "王晓明", "role": "account_manager"},
            {"username": "hy.qiao", "name": "乔一帆", "role": "client_contact"},
        ],
        **changes,
    )


async def staffed(server: RunningServer, external_id: str) -> dict[str, str]:
    """Who holds the service specialist and developer roles in the project's room, by username."""
    store = server.services.store
    project = await store.get_project_by_external_id(external_id)
    assert project is not None and project.room_id
    users = {u.id: u.username for u in await store.list_users()}
    return {
        m.role: users[m.user_id]
        for m in await store.list_members(project.room_id)
        if m.role in ("service_specialist", "developer", "after_sales")
    }


async def start_implementation(server: RunningServer, number: int) -> dict[str, str]:
    await register(server, siku_project(number))
    status, answer = await move(server, f"SMP-2026-1{number:03d}", "implementation")
    assert (status, answer["moved"]) == (200, True), answer
    return await staffed(server, f"SMP-2026-1{number:03d}")


async def test_the_least_loaded_suitable_staff_member_is_chosen_and_ties_go_to_the_longest_waiting(
    server, people: People
):
    # Demo: ss.liu and dev.zhang (skills 银企直连 + 司库) each have one open project (星河, implementation).
    await people.create_user("ss.two", "郑洁", BANK, "staff", ["service_specialist"], skills=SIKU)
    await people.create_user("ss.wrongskill", "冯涛", BANK, "staff", ["service_specialist"], skills=["银企直连"])
    await people.create_user("ss.away", "何静", BANK, "staff", ["service_specialist"], skills=SIKU, active=False)
    await people.create_user("ss.noskill", "许亮", BANK, "staff", ["service_specialist"])
    await people.create_user("am.skilled", "韩雪", BANK, "staff", ["account_manager"], skills=SIKU)
    await people.create_user("dev.two", "马超", BANK, "staff", ["developer"], skills=["司库", "票据"])

    # 1: the newcomers have no open project; the others have one.
    assert await start_implementation(server, 1) == {"service_specialist": "ss.two", "developer": "dev.two"}
    # 2: one open project each: a tie, to the one whose last assignment is oldest (the demo's, at seeding).
    assert await start_implementation(server, 2) == {"service_specialist": "ss.liu", "developer": "dev.zhang"}
    # 3: ss.liu and dev.zhang now have two; the newcomers one.
    assert await start_implementation(server, 3) == {"service_specialist": "ss.two", "developer": "dev.two"}
    # Project 1 closes: it no longer counts, so the newcomers have one open project against two.
    for stage in ("aftersales", "closed"):
        assert (await move(server, "SMP-2026-1001", stage))[0] == 200
    assert await start_implementation(server, 4) == {"service_specialist": "ss.two", "developer": "dev.two"}

    # The room says who was assigned, by name.
    project = await server.services.store.get_project_by_external_id("SMP-2026-1004")
    texts = [m.text for m in (await server.services.store.list_messages(project.room_id))[0]]
    assert "已自动分配服务专员：郑洁。" in texts and "已自动分配研发人员：马超。" in texts
    assert project.unstaffed == []


async def test_a_disabled_or_unskilled_person_is_never_chosen_even_when_idle(server, people: People):
    await people.admin("PATCH", f"/api/admin/users/{await _id(server, 'ss.liu')}", {"active": False})
    await people.create_user("ss.wrongskill", "冯涛", BANK, "staff", ["service_specialist"], skills=["银企直连"])
    assert await start_implementation(server, 1) == {"developer": "dev.zhang"}
    project = await server.services.store.get_project_by_external_id("SMP-2026-1001")
    assert project.unstaffed == ["service_specialist"]


async def _id(server: RunningServer, username: str) -> str:
    user = await server.services.store.get_user_by_username(username)
    assert user is not None
    return user.id


@pytest.mark.products(["银企直连", "司库", "跨境支付"])  # a product nobody is skilled in yet
async def test_nobody_suitable_the_room_says_so_admins_see_it_and_the_room_still_works(server, people: People):
    await register(server, project_payload(products=["跨境支付"]))
    wang = await people.connect("am.wang")
    qiao = await people.connect("hy.qiao")
    admin = await people.connect("admin")

    status, answer = await move(server, "SMP-2026-0031", "implementation")

    assert status == 200 and answer["project"]["unstaffed"] == ["service_specialist", "developer"]
    updated = await wang.wait_for("room_updated", lambda r: r["project"]["stage"] == "implementation")
    assert "unstaffed" not in updated["project"]  # a staffing problem is the admins' business, not the room's
    await qiao.wait_for("message", lambda m: "研发人员" in m["text"])
    notices = [m["text"] for m in qiao.events("message")]
    assert "暂无可分配的服务专员（无人具备本项目产品技能），已提交管理员处理。" in notices
    assert "暂无可分配的研发人员（无人具备本项目产品技能），已提交管理员处理。" in notices
    assert await staffed(server, "SMP-2026-0031") == {}

    status, body = await rest(server, "GET", "/api/admin/projects", token=await people.admin_token())
    listed = {p["external_id"]: p for p in body["projects"]}
    assert listed["SMP-2026-0031"]["unstaffed"] == ["service_specialist", "developer"]
    assert listed["SMP-2026-0017"]["unstaffed"] == []
    board = {p["external_id"]: p for p in (await admin.call("list_projects"))["projects"]}
    assert board["SMP-2026-0031"]["unstaffed"] == ["service_specialist", "developer"]

    # The room works as any other.
    sent = await wang.call(
        "send_message", {"room_id": updated["id"], "text": "我来协调人员", "client_msg_id": uuid.uuid4().hex}
    )
    assert sent["ok"], sent
    await qiao.wait_for("message", lambda m: m["text"] == "我来协调人员")

    status, body = await rest(server, "GET", "/api/admin/audit?limit=10", token=await people.admin_token())
    failures = [e for e in body["entries"] if e["action"] == "staffing_failed"]
    assert sorted(e["detail"]["role"] for e in failures) == ["developer", "service_specialist"]
    assert all(e["room_id"] == updated["id"] and e["outcome"] == "failure" for e in failures)


async def test_a_role_the_platform_already_filled_is_not_filled_twice(server):
    payload = siku_project(1)
    payload["people"].append({"username": "ss.liu", "name": "刘婷", "role": "service_specialist"})  # type: ignore[attr-defined]
    await register(server, payload)
    assert (await move(server, "SMP-2026-1001", "implementation"))[0] == 200
    project = await server.services.store.get_project_by_external_id("SMP-2026-1001")
    roles = [m.role for m in await server.services.store.list_members(project.room_id)]
    assert roles.count("service_specialist") == 1 and roles.count("developer") == 1


async def test_aftersales_brings_everyone_on_duty_for_the_product_and_only_them(server, people: People):
    await people.create_user("as.second", "唐宁", BANK, "staff", ["after_sales"], duty=SIKU)
    await people.create_user("as.other", "罗杰", BANK, "staff", ["after_sales"], duty=["银企直连"])
    await people.create_user("as.skilled", "宋雨", BANK, "staff", ["after_sales"], skills=SIKU)  # skill, no duty
    second = await people.connect("as.second")
    await start_implementation(server, 1)

    assert (await move(server, "SMP-2026-1001", "aftersales"))[0] == 200

    project = await server.services.store.get_project_by_external_id("SMP-2026-1001")
    users = {u.id: u.username for u in await server.services.store.list_users()}
    on_duty = [users[m.user_id] for m in await server.services.store.list_members(project.room_id)]
    assert sorted(u for u in on_duty if u.startswith("as.")) == ["as.huang", "as.second"]
    added = await second.wait_for("room_added", lambda r: r["id"] == project.room_id)
    assert added["my_role"] == "after_sales"


async def test_aftersales_with_nobody_on_duty_is_unstaffed(server, people: People):
    await people.admin("PATCH", f"/api/admin/users/{await _id(server, 'as.huang')}", {"duty": []})
    await start_implementation(server, 1)
    status, answer = await move(server, "SMP-2026-1001", "aftersales")
    assert status == 200 and answer["project"]["unstaffed"] == ["after_sales"]
    project = await server.services.store.get_project_by_external_id("SMP-2026-1001")
    texts = [m.text for m in (await server.services.store.list_messages(project.room_id))[0]]
    assert "暂无可分配的售后值班（本项目产品暂无售后值班人员），已提交管理员处理。" in texts


async def test_staffing_never_takes_someone_already_in_the_room_out_of_their_role(server, people: People):
    """One membership holds one role: picking a member again would overwrite the role they have."""
    # se.chen is the project's solution expert; make him a developer too, and nobody else available.
    chen = await _id(server, "se.chen")
    await people.admin("PATCH", f"/api/admin/users/{chen}", {"roles": ["solution_expert", "developer"]})
    await people.admin("PATCH", f"/api/admin/users/{await _id(server, 'dev.zhang')}", {"active": False})
    # One idle newcomer holds both staffing roles: they can fill one of them, not both.
    await people.create_user("ss.both", "龚平", BANK, "staff", ["service_specialist", "developer"], skills=SIKU)
    await people.admin("PATCH", f"/api/admin/users/{await _id(server, 'ss.liu')}", {"active": False})
    payload = siku_project(1)
    payload["people"].append({"username": "se.chen", "name": "陈思远", "role": "solution_expert"})  # type: ignore[attr-defined]
    await register(server, payload)

    status, _ = await move(server, "SMP-2026-1001", "implementation")

    assert status == 200
    project = await server.services.store.get_project_by_external_id("SMP-2026-1001")
    roles = {m.user_id: m.role for m in await server.services.store.list_members(project.room_id)}
    assert roles[chen] == "solution_expert"
    assert roles[await _id(server, "ss.both")] == "service_specialist"
    assert "developer" not in roles.values()
    assert project.unstaffed == ["developer"]


async def test_after_sales_staff_already_in_the_room_keep_their_role(server, people: People):
    # The account manager is also on after-sales duty for 司库.
    wang = await _id(server, "am.wang")
    await people.admin("PATCH", f"/api/admin/users/{wang}", {"roles": ["account_manager", "after_sales"], "duty": SIKU})
    await start_implementation(server, 1)
    assert (await move(server, "SMP-2026-1001", "aftersales"))[0] == 200
    project = await server.services.store.get_project_by_external_id("SMP-2026-1001")
    roles = {m.user_id: m.role for m in await server.services.store.list_members(project.room_id)}
    assert roles[wang] == "account_manager"
    assert roles[await _id(server, "as.huang")] == "after_sales"
    assert project.unstaffed == []
