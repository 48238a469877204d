"""Real services (the composition root's `build_services`) on a temp data dir, and a recorder on the bus.

The people and rooms are put straight into the store, so a test starts with nothing published.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chatserver.app import build_services
from chatserver.auth import Passwords
from chatserver.errors import ChatError
from chatserver.events import Event
from chatserver.models import Membership, Message, Room, User, UserKind, new_id, utcnow
from chatserver.services import Services
from tests.conftest import make_settings

BANK = "云帆银行交易银行部"
XINGHE = "星河制造集团有限公司"
RUIFENG = "瑞丰物流股份有限公司"


@pytest.fixture(scope="session")
def passwords() -> Passwords:
    """One hasher for the whole run: building one hashes a dummy password, slow on purpose."""
    return Passwords()


ServicesFactory = Callable[..., Awaitable[Services]]


@pytest.fixture
async def make_services(
    tmp_path: Path, passwords: Passwords, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[ServicesFactory]:
    """`await make_services(**setting_overrides)`: services with an opened store, closed after the test."""
    opened: list[Services] = []
    monkeypatch.setattr("chatserver.app.Passwords", lambda: passwords)  # the shared hasher, not a new one

    async def make(**overrides: Any) -> Services:
        services = build_services(make_settings(tmp_path / f"data{len(opened)}", demo=False, **overrides))
        assert services.passwords is passwords
        await services.store.open()
        opened.append(services)
        return services

    yield make
    for services in opened:
        await services.store.close()


@pytest.fixture
async def services(make_services: ServicesFactory) -> Services:
    return await make_services()


@pytest.fixture
def events(services: Services) -> list[Event]:
    """Every event published on the bus, in order."""
    seen: list[Event] = []

    async def record(event: Event) -> None:
        seen.append(event)

    services.bus.subscribe(record)
    return seen


@dataclass
class World:
    admin: User  # staff, admin, member of xinghe
    wang: User  # staff account manager, member of xinghe, ruifeng and archive
    chen: User  # staff solution expert, member of xinghe
    li: User  # client, member of xinghe and archive
    sun: User  # client, member of xinghe
    zhou: User  # client of another company, member of ruifeng only
    boss: User  # staff admin who is in no room
    xinghe: Room
    ruifeng: Room
    archive: Room  # closed: read-only
    archived_message: Message  # li's, sent before the room was closed


async def add_user(services: Services, username: str, name: str, org: str, kind: UserKind, *roles: str) -> User:
    return await services.store.create_user(
        User(id=new_id("u"), username=username, name=name, org=org, kind=kind, roles=list(roles))
    )


async def add_room(services: Services, title: str, members: list[User], *, read_only: bool = False) -> Room:
    room = await services.store.create_room(Room(id=new_id("r"), kind="project", title=title, read_only=read_only))
    for user in members:
        await services.store.add_member(Membership(room_id=room.id, user_id=user.id, role=user.roles[0]))
    return room


@pytest.fixture
async def world(services: Services, events: list[Event]) -> World:
    admin = await add_user(services, "admin", "赵敏", BANK, "staff", "admin")
    wang = await add_user(services, "am.wang", "王晓明", BANK, "staff", "account_manager")
    chen = await add_user(services, "se.chen", "陈思远", BANK, "staff", "solution_expert")
    li = await add_user(services, "xh.li", "李娜", XINGHE, "client", "client_admin")
    sun = await add_user(services, "xh.sun", "孙浩", XINGHE, "client", "client_member")
    zhou = await add_user(services, "rf.zhou", "周敏", RUIFENG, "client", "client_admin")
    boss = await add_user(services, "boss", "钱总", BANK, "staff", "admin")
    xinghe = await add_room(services, "星河制造集团 · 银企直连", [admin, wang, chen, li, sun])
    ruifeng = await add_room(services, "瑞丰物流 · 司库", [wang, zhou])
    archive = await add_room(services, "星河制造集团 · 结项", [wang, li], read_only=True)
    archived, _ = await services.store.append_message(
        message_id=new_id("m"),
        room_id=archive.id,
        sender_id=li.id,
        text="项目已上线，谢谢各位",
        client_msg_id="c-archived",
        created_at=utcnow(),
        into_read_only=True,  # history from before it was closed
    )
    assert events == []
    return World(admin, wang, chen, li, sun, zhou, boss, xinghe, ruifeng, archive, archived)


async def snapshot(services: Services, world: World) -> dict[str, Any]:
    """Everything an action could change, to show that a refused one changed nothing."""
    store = services.store
    rooms = (world.xinghe, world.ruifeng, world.archive)
    messages = {room.id: (await store.list_messages(room.id, limit=100))[0] for room in rooms}
    return {
        "users": await store.list_users(),
        "rooms": [await store.get_room(room.id) for room in rooms],
        "members": [await store.list_members(room.id) for room in rooms],
        "messages": messages,
        "revisions": {m.id: await store.list_revisions(m.id) for ms in messages.values() for m in ms},
    }


Refuse = Callable[[Awaitable[Any], type[ChatError]], Awaitable[ChatError]]


@pytest.fixture
def refuse(services: Services, world: World, events: list[Event]) -> Refuse:
    """`err = await refuse(action(...), NotFound)`: the action fails with that error, stores and publishes nothing."""

    async def check(call: Awaitable[Any], error: type[ChatError]) -> ChatError:
        before = await snapshot(services, world)
        published = len(events)
        with pytest.raises(error) as info:
            await call
        assert type(info.value) is error
        assert events[published:] == []
        assert await snapshot(services, world) == before
        return info.value

    return check
