"""Signing in and managing users, through the real services (argon2 is slow on purpose: few passwords here)."""

from __future__ import annotations

import pytest

from chatserver.actions import accounts
from chatserver.errors import Conflict, Forbidden, InvalidPayload, NotFound, RateLimited, Unauthorized
from chatserver.events import Event, SessionsRevoked, UserUpdated
from chatserver.ratelimit import RateLimiter
from chatserver.services import Services

from .conftest import BANK, XINGHE, Refuse, World

PASSWORD = "xinghe-2026-证书"


async def test_login_fails_alike_for_unknown_users_wrong_passwords_disabled_users_and_no_password(
    services: Services, world: World
) -> None:
    user = await accounts.create_user(
        services,
        world.admin,
        username="xh.zhao",
        name="赵雷",
        org=XINGHE,
        kind="client",
        roles=["client_member"],
        password=PASSWORD,
    )
    token, who = await accounts.login(services, username="xh.zhao", password=PASSWORD)
    assert who == user
    assert (await accounts.authenticate(services, token))[0] == user

    failures: list[str] = []
    for username, password in [
        ("xh.zhao", PASSWORD + "x"),  # wrong password
        ("xh.zhaoo", PASSWORD),  # unknown user
        ("xh.li", ""),  # a user who has no password
    ]:
        with pytest.raises(Unauthorized) as info:
            await accounts.login(services, username=username, password=password)
        failures.append(str(info.value))
    await accounts.update_user(services, world.admin, user.id, active=False)
    with pytest.raises(Unauthorized) as info:
        await accounts.login(services, username="xh.zhao", password=PASSWORD)  # right password, disabled user
    failures.append(str(info.value))

    assert failures == ["wrong username or password"] * 4
    with pytest.raises(Unauthorized):  # the token issued before is no good any more
        await accounts.authenticate(services, token)


async def test_an_admin_sets_a_password_and_the_user_can_sign_in_with_it(services: Services, world: World) -> None:
    await accounts.update_user(services, world.admin, world.sun.id, password=PASSWORD)

    token, who = await accounts.login(services, username="xh.sun", password=PASSWORD)
    assert who.id == world.sun.id
    assert services.tokens.verify(token).user_id == world.sun.id


async def test_a_password_change_or_a_disable_voids_the_tokens_issued_before(services: Services, world: World) -> None:
    await accounts.update_user(services, world.admin, world.sun.id, password=PASSWORD)
    old_token, _ = await accounts.login(services, username="xh.sun", password=PASSWORD)
    await accounts.update_user(services, world.admin, world.sun.id, password=PASSWORD + "-new")
    with pytest.raises(Unauthorized, match="revoked"):
        await accounts.authenticate(services, old_token)
    new_token, _ = await accounts.login(services, username="xh.sun", password=PASSWORD + "-new")
    assert (await accounts.authenticate(services, new_token))[0].id == world.sun.id

    await accounts.update_user(services, world.admin, world.sun.id, active=False)
    await accounts.update_user(services, world.admin, world.sun.id, active=True)
    with pytest.raises(Unauthorized, match="revoked"):  # enabling again does not bring old tokens back
        await accounts.authenticate(services, new_token)


async def test_sign_in_attempts_are_limited_per_address_and_username(services: Services, world: World) -> None:
    frozen = 1000.0  # the limiter's clock stands still: no attempt comes back however slow the hashing
    services.login_limiter = RateLimiter(10 / 60, 10, clock=lambda: frozen)
    services.login_ip_limiter = RateLimiter(1, 12, clock=lambda: frozen)
    for _ in range(10):
        with pytest.raises(Unauthorized):
            await accounts.login(services, username="xh.li", password="guess-guess", client_ip="198.51.100.7")
    with pytest.raises(RateLimited):
        await accounts.login(services, username="xh.li", password="guess-guess", client_ip="198.51.100.7")
    with pytest.raises(Unauthorized):  # the same user from elsewhere is not locked out by it
        await accounts.login(services, username="xh.li", password="guess-guess", client_ip="203.0.113.9")
    with pytest.raises(Unauthorized):  # another account from that address: within the address's own budget
        await accounts.login(services, username="xh.sun", password="guess-guess", client_ip="198.51.100.7")
    with pytest.raises(RateLimited):  # which runs out too, whatever the username
        await accounts.login(services, username="xh.zhou", password="guess-guess", client_ip="198.51.100.7")


# create_user -------------------------------------------------------------------------------------


async def test_an_admin_or_the_command_line_creates_users(services: Services, world: World) -> None:
    dev = await accounts.create_user(
        services,
        world.admin,
        username="dev.zhang",
        name="张伟",
        org=BANK,
        kind="staff",
        roles=["developer", "developer"],
    )
    bot = await accounts.create_user(services, None, username="bot.ticket", name="工单机器人", org=BANK, kind="bot")

    assert dev.roles == ["developer"]
    assert await services.store.get_user_by_username("dev.zhang") == dev
    assert await services.store.get_user_by_username("bot.ticket") == bot
    assert (bot.kind, bot.roles, bot.active) == ("bot", [], True)
    assert await services.store.get_password_hash(dev.id) is None


async def test_only_an_admin_creates_users(services: Services, world: World, refuse: Refuse) -> None:
    for actor in (world.wang, world.li):
        err = await refuse(
            accounts.create_user(services, actor, username="x.new", name="新人", org=BANK, kind="staff", roles=[]),
            Forbidden,
        )
        assert "admin" in str(err)


@pytest.mark.parametrize(
    ("kind", "roles"),
    [
        ("client", ["account_manager"]),
        ("client", ["client_admin", "admin"]),
        ("staff", ["client_member"]),
        ("bot", ["admin"]),
        ("staff", ["superuser"]),
    ],
)
async def test_roles_must_fit_the_kind_of_user(
    services: Services, world: World, refuse: Refuse, kind: str, roles: list[str]
) -> None:
    err = await refuse(
        accounts.create_user(
            services,
            world.admin,
            username="x.new",
            name="新人",
            org=XINGHE,
            kind=kind,  # type: ignore[arg-type]
            roles=roles,
        ),
        InvalidPayload,
    )
    assert "roles" in str(err)
    assert await services.store.get_user_by_username("x.new") is None


async def test_a_taken_username_is_a_conflict(services: Services, world: World, refuse: Refuse) -> None:
    for actor in (world.admin, None):
        err = await refuse(
            accounts.create_user(services, actor, username="xh.li", name="另一个李娜", org=XINGHE, kind="client"),
            Conflict,
        )
        assert str(err) == "that username is taken"
    assert (await services.store.get_user_by_username("xh.li")) == world.li


# update_user -------------------------------------------------------------------------------------


async def test_disabling_a_user_revokes_their_sessions_once(
    services: Services, world: World, events: list[Event]
) -> None:
    disabled = await accounts.update_user(services, world.admin, world.li.id, active=False)
    assert disabled.active is False
    assert events == [UserUpdated(user=disabled), SessionsRevoked(user_id=world.li.id)]
    assert (await services.store.get_user(world.li.id)) == disabled
    with pytest.raises(Unauthorized):
        await accounts.active_user(services, world.li.id)

    renamed = await accounts.update_user(services, world.admin, world.li.id, name="李娜娜", active=False)
    enabled = await accounts.update_user(services, world.admin, world.li.id, active=True)
    assert events[2:] == [UserUpdated(user=renamed), UserUpdated(user=enabled)]  # no second SessionsRevoked
    assert await accounts.active_user(services, world.li.id) == enabled


async def test_an_admin_cannot_disable_themselves_or_drop_their_own_admin_role(
    services: Services, world: World, events: list[Event], refuse: Refuse
) -> None:
    await refuse(accounts.update_user(services, world.admin, world.admin.id, active=False), Forbidden)
    await refuse(accounts.update_user(services, world.admin, world.admin.id, roles=["developer"]), Forbidden)

    renamed = await accounts.update_user(services, world.admin, world.admin.id, name="赵敏（管理员）")
    assert (renamed.name, renamed.active, renamed.roles) == ("赵敏（管理员）", True, ["admin"])
    other = await accounts.update_user(services, world.boss, world.admin.id, active=False)  # another admin may
    assert other.active is False
    assert events == [UserUpdated(user=renamed), UserUpdated(user=other), SessionsRevoked(user_id=world.admin.id)]


async def test_only_an_admin_updates_users_and_roles_must_fit(services: Services, world: World, refuse: Refuse) -> None:
    await refuse(accounts.update_user(services, world.wang, world.li.id, active=False), Forbidden)
    await refuse(accounts.update_user(services, world.li, world.sun.id, roles=["client_admin"]), Forbidden)
    await refuse(accounts.update_user(services, world.admin, world.li.id, roles=["account_manager"]), InvalidPayload)
    await refuse(accounts.update_user(services, world.admin, "u_0000000000000000", active=False), NotFound)


async def test_only_an_admin_lists_users(services: Services, world: World) -> None:
    users = await accounts.list_users(services, world.admin)
    assert {u.username for u in users} == {"admin", "am.wang", "se.chen", "xh.li", "xh.sun", "rf.zhou", "boss"}
    with pytest.raises(Forbidden):
        await accounts.list_users(services, world.wang)
