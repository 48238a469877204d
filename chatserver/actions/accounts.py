"""Signing in, and the users an admin (or the CLI) manages."""

from __future__ import annotations

import logging

from ..errors import Conflict, Forbidden, InvalidPayload, NotFound, Unauthorized
from ..events import UserDisabled, UserUpdated
from ..models import CLIENT_ROLES, STAFF_ROLES, User, UserKind, new_id
from ..services import Services
from ..storage import DuplicateKey
from . import audit

log = logging.getLogger("chatserver.accounts")

_BAD_LOGIN = "wrong username or password"


async def login(services: Services, *, username: str, password: str) -> tuple[str, User]:
    """A token for the user; Unauthorized alike for unknown users, wrong passwords and disabled users."""
    user = await services.store.get_user_by_username(username)
    password_hash = await services.store.get_password_hash(user.id) if user else None
    ok = await services.passwords.verify(password_hash, password)
    if user is None or not ok or not user.active:
        log.info("login failed", extra={"outcome": "failure"})
        await audit.record(
            services, "login", actor_id=user.id if user else None, outcome="failure", username=username[:64]
        )
        raise Unauthorized(_BAD_LOGIN)
    log.info("login", extra={"user_id": user.id, "outcome": "success"})
    await audit.record(services, "login", actor_id=user.id)
    return services.tokens.issue(user.id), user


async def authenticate(services: Services, token: object) -> User:
    """The active user a token names, or Unauthorized."""
    user_id = services.tokens.verify(token)
    return await active_user(services, user_id)


async def active_user(services: Services, user_id: str) -> User:
    user = await services.store.get_user(user_id)
    if user is None or not user.active:
        raise Unauthorized("the user is not active")
    return user


def _check_roles(kind: str, roles: list[str]) -> list[str]:
    allowed = {"staff": STAFF_ROLES, "client": CLIENT_ROLES, "bot": frozenset()}[kind]
    unknown = [r for r in roles if r not in allowed]
    if unknown:
        raise InvalidPayload(f"roles: {', '.join(unknown)} not allowed for a {kind} user")
    return list(dict.fromkeys(roles))


def _require_admin(actor: User | None) -> None:
    """None is the operator at the command line, who may do anything an admin may."""
    if actor is not None and not actor.is_admin:
        raise Forbidden("only an admin can manage users")


async def create_user(
    services: Services,
    actor: User | None,
    *,
    username: str,
    name: str,
    org: str,
    kind: UserKind,
    roles: list[str] = (),  # type: ignore[assignment]
    password: str | None = None,
    active: bool = True,
    email: str | None = None,
) -> User:
    _require_admin(actor)
    user = User(
        email=email,
        id=new_id("u"),
        username=username,
        name=name,
        org=org,
        kind=kind,
        roles=_check_roles(kind, list(roles)),
        active=active,
    )
    password_hash = await services.passwords.hash(password) if password else None
    try:
        await services.store.create_user(user, password_hash)
    except DuplicateKey as exc:
        raise Conflict("that username is taken") from exc
    log.info("user created", extra={"user_id": user.id, "actor_id": actor.id if actor else "cli"})
    await audit.record(
        services, "user_created", actor_id=actor.id if actor else None, target_id=user.id, kind=kind, roles=user.roles
    )
    return user


async def update_user(
    services: Services,
    actor: User | None,
    user_id: str,
    *,
    name: str | None = None,
    org: str | None = None,
    roles: list[str] | None = None,
    active: bool | None = None,
    password: str | None = None,
    email: str | None = None,
    skills: list[str] | None = None,
    duty: list[str] | None = None,
    max_sessions: int | None = None,
) -> User:
    _require_admin(actor)
    current = await services.store.get_user(user_id)
    if current is None:
        raise NotFound("user not found")
    if roles is not None:
        roles = _check_roles(current.kind, roles)
    if actor is not None and actor.id == user_id and (active is False or (roles is not None and "admin" not in roles)):
        raise Forbidden("an admin cannot disable themselves or drop their own admin role")
    password_hash = await services.passwords.hash(password) if password else None
    if (skills is not None or duty is not None or max_sessions is not None) and current.kind != "staff":
        raise InvalidPayload("skills, duty and max_sessions are for bank staff only")
    user = await services.store.update_user(
        user_id,
        name=name,
        org=org,
        roles=roles,
        active=active,
        email=email,
        skills=skills,
        duty=duty,
        max_sessions=max_sessions,
    )
    if user is None:
        raise NotFound("user not found")
    if password_hash is not None:
        await services.store.set_password_hash(user_id, password_hash)
    changed = {
        field: {"from": before, "to": after}
        for field, before, after in (
            ("name", current.name, user.name),
            ("org", current.org, user.org),
            ("roles", current.roles, user.roles),
            ("active", current.active, user.active),
            ("email", current.email, user.email),
            ("skills", current.skills, user.skills),
            ("duty", current.duty, user.duty),
            ("max_sessions", current.max_sessions, user.max_sessions),
        )
        if before != after
    }
    if password_hash is not None:
        changed["password"] = {"from": "***", "to": "***"}
    await audit.record(
        services, "user_updated", actor_id=actor.id if actor else None, target_id=user_id, changes=changed
    )
    log.info("user updated", extra={"user_id": user_id, "actor_id": actor.id if actor else "cli"})
    await services.bus.publish(UserUpdated(user=user))
    if current.active and not user.active:
        await services.bus.publish(UserDisabled(user_id=user_id))
    return user


async def list_users(services: Services, actor: User) -> list[User]:
    _require_admin(actor)
    return await services.store.list_users()
