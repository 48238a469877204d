"""Demo data (fictional people and companies), seeded on the first start of an empty data dir."""

from __future__ import annotations

from dataclasses import dataclass

from .actions import accounts, messages, projects
from .models import UserKind
from .schemas import PlatformProject, parse
from .services import Services

DEMO_PASSWORD = "cloud2026"  # noqa: S105 (documented demo login)
BANK = "云帆银行交易银行部"
XINGHE = "星河制造集团有限公司"
RUIFENG = "瑞丰物流股份有限公司"


@dataclass(frozen=True)
class DemoUser:
    username: str
    name: str
    org: str
    kind: UserKind
    roles: tuple[str, ...]
    note: str


DEMO_USERS = (
    DemoUser("admin", "赵敏", BANK, "staff", ("admin",), "管理员 admin"),
    DemoUser("am.wang", "王晓明", BANK, "staff", ("account_manager",), "客户经理 account manager"),
    DemoUser("se.chen", "陈思远", BANK, "staff", ("solution_expert",), "方案专家 solution expert"),
    DemoUser("ss.liu", "刘婷", BANK, "staff", ("service_specialist",), "服务专员 service specialist"),
    DemoUser("dev.zhang", "张伟", BANK, "staff", ("developer",), "研发人员 developer"),
    DemoUser("se.lin", "林静", BANK, "staff", ("solution_expert",), "方案专家 solution expert (司库)"),
    DemoUser("as.huang", "黄磊", BANK, "staff", ("after_sales",), "售后 after-sales"),
    DemoUser("xh.li", "李娜", XINGHE, "client", ("client_admin",), "星河制造 client admin"),
    DemoUser("xh.sun", "孙浩", XINGHE, "client", ("client_member",), "星河制造 client member"),
    DemoUser("rf.zhou", "周敏", RUIFENG, "client", ("client_admin",), "瑞丰物流 client admin"),
    DemoUser("rf.wu", "吴桐", RUIFENG, "client", ("client_member",), "瑞丰物流 client member"),
)

# (username, product skills, after-sales duty, concurrent expert sessions)
DEMO_STAFFING = (
    ("se.chen", ("银企直连", "司库"), (), 2),
    ("se.lin", ("司库",), (), 2),
    ("ss.liu", ("银企直连", "司库"), (), 3),
    ("dev.zhang", ("银企直连", "司库"), (), 3),
    ("as.huang", (), ("银企直连", "司库"), 3),
)


async def seed_demo(services: Services) -> bool:
    """Seed once: only into a store with no people yet (bots do not count). True if it seeded."""
    if any(u.kind != "bot" for u in await services.store.list_users()):
        return False
    ids: dict[str, str] = {}
    for u in DEMO_USERS:
        user = await accounts.create_user(
            services,
            None,
            username=u.username,
            name=u.name,
            org=u.org,
            kind=u.kind,
            roles=list(u.roles),
            password=DEMO_PASSWORD,
        )
        ids[u.username] = user.id

    for username, skills, duty, max_sessions in DEMO_STAFFING:
        await accounts.update_user(
            services, None, ids[username], skills=list(skills), duty=list(duty), max_sessions=max_sessions
        )

    def person(username: str, role: str) -> dict[str, str]:
        demo_user = next(u for u in DEMO_USERS if u.username == username)
        return {"username": username, "name": demo_user.name, "role": role}

    xinghe, _ = await projects.register_project(
        services,
        parse(
            PlatformProject,
            {
                "external_id": "SMP-2026-0017",
                "name": "银企直连",
                "client_org": XINGHE,
                "products": ["银企直连"],
                "stage": "implementation",  # staffed automatically: 刘婷 and 张伟
                "people": [
                    person("am.wang", "account_manager"),
                    person("se.chen", "solution_expert"),
                    person("xh.li", "client_contact"),
                    person("xh.sun", "client_contact"),
                ],
            },
        ),
        delivery_id="demo-1",
    )
    ruifeng, _ = await projects.register_project(
        services,
        parse(
            PlatformProject,
            {
                "external_id": "SMP-2026-0023",
                "name": "司库系统",
                "client_org": RUIFENG,
                "products": ["司库"],
                "people": [
                    person("am.wang", "account_manager"),
                    person("se.chen", "solution_expert"),
                    person("rf.zhou", "client_contact"),
                    person("rf.wu", "client_contact"),
                ],
            },
        ),
        delivery_id="demo-2",
    )
    assert xinghe.room_id and ruifeng.room_id
    xinghe_room, ruifeng_room = xinghe.room_id, ruifeng.room_id

    users = {u.id: u for u in await services.store.list_users()}
    script = [
        (xinghe_room, "am.wang", "各位好，星河制造银企直连项目已进入实施阶段，本群用于日常沟通。"),
        (xinghe_room, "xh.li", "收到，我们这边 ERP 对接由孙浩负责。测试环境什么时候可以开通？"),
        (xinghe_room, "ss.liu", "测试环境账号本周三前开通，证书申请表稍后发给大家。"),
        (xinghe_room, "xh.sun", "好的，我们先准备签名证书的 CSR。"),
        (ruifeng_room, "am.wang", "周总好，司库系统的方案初稿已经准备好，下周一可以演示。"),
        (ruifeng_room, "rf.zhou", "好的，我们财务和资金部门都会参加。"),
        (ruifeng_room, "se.chen", "演示会覆盖资金归集、票据池和预算管控三个模块。"),
    ]
    for number, (room_id, username, text) in enumerate(script, start=1):
        await messages.send_message(
            services, users[ids[username]], room_id=room_id, text=text, client_msg_id=f"demo-{number}"
        )
    return True
