"""Signing in, and the users an admin (or the CLI) manages."""

from __future__ import annotations

import logging
import time

from ..auth import VerifiedToken
from ..errors import Conflict, Forbidden, InvalidPayload, NotFound, Unauthorized
from ..events import SessionsRevoked, UserUpdated
from ..models import CLIENT_ROLES, STAFF_ROLES, User, UserKind, new_id, utcnow
from ..services import Services
from ..storage import DuplicateKey
from . import audit, experts

log = logging.getLogger("chatserver.accounts")

_BAD_LOGIN = "wrong username or password"


async def login(services: Services, *, username: str, password: str, client_ip: str = "") -> tuple[str, User]:
    """A token for the user; Unauthorized alike for unknown users, wrong passwords and disabled users.

    Attempts are limited per address and username, and per address (RateLimited): nobody guesses a password
    quickly, and nobody elsewhere can lock a user out by failing on purpose."""
    services.login_ip_limiter.check(client_ip)
    services.login_limiter.check(f"{client_ip}|{username.casefold()[:64]}")
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


async def authenticate(services: Services, token: object) -> tuple[User, VerifiedToken]:
    """The active user a token names, or Unauthorized. Tokens issued before the user's password was changed or
    before they were disabled or enabled (`tokens_after`) no longer count."""
    verified = services.tokens.verify(token)
    return await token_user(services, verified), verified


async def token_user(services: Services, verified: VerifiedToken) -> User:
    """The user of a verified token, checked again now: not expired, not revoked, still active.
    Sockets call this on every event, so a token's end or a disable ends what it opened."""
    if time.time() > verified.expires_at:
        raise Unauthorized("the token has expired; sign in again")
    return check_token_user(verified, await services.store.get_user(verified.user_id))


def check_token_user(verified: VerifiedToken, user: User | None) -> User:
    """`token_user`'s checks on a user already read (the namespace keeps its signed-in users between events)."""
    if time.time() > verified.expires_at:
        raise Unauthorized("the token has expired; sign in again")
    if user is None or not user.active:
        raise Unauthorized("the user is not active")
    if user.tokens_after is not None and verified.issued_at < user.tokens_after.timestamp():
        raise Unauthorized("the token was revoked; sign in again")
    return user


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
    if (skills is not None or duty is not None or max_sessions is not None) and current.kind != "staff":
        raise InvalidPayload("skills, duty and max_sessions are for bank staff only")
    password_hash = await services.passwords.hash(password) if password else None
    revoke = password_hash is not None or (active is not None and active != current.active)
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
        tokens_after=utcnow() if revoke else None,
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
    if skills is not None or max_sessions is not None or roles is not None:
        await experts.dispatch_for_expert(services, user)  # more room or new skills: serve who is waiting
    if password_hash is not None or (current.active and not user.active):  # their open sockets must go now
        await services.bus.publish(SessionsRevoked(user_id=user_id))
    if current.active and not user.active:
        await experts.requeue_sessions_of(services, user)
    return user


async def list_users(services: Services, actor: User) -> list[User]:
    _require_admin(actor)
    return await services.store.list_users()
