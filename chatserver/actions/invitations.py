"""Invitations: a one-time, expiring link that lets a person the platform created set a password and sign in.

The token is 32 random bytes (URL-safe); the store keeps only its SHA-256 (a token is too long to guess, so a fast
hash is enough). A new invitation for a person revokes their earlier ones. The email itself is sent by the mail
notifier, which hears `InvitationCreated`.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime, timedelta

from ..errors import Forbidden, InvalidPayload, InvitationExpired, InvitationInvalid, InvitationUsed, NotFound
from ..events import InvitationCreated, SessionsRevoked
from ..models import Invitation, User, utcnow
from ..services import Services
from . import audit

log = logging.getLogger("chatserver.invitations")
_TOKEN_BYTES = 32
_NOT_VALID = "this link to set a password is not valid"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def create_invitation(
    services: Services, user: User, *, actor_id: str | None = None, project_title: str | None = None
) -> Invitation:
    """Invite `user` (who must have an email address) and publish `InvitationCreated` for the email."""
    if not user.email:
        raise InvalidPayload("the user has no email address to send an invitation to")
    if user.kind == "bot":
        raise InvalidPayload("bots are not invited")
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    now = utcnow()
    invitation = await services.store.create_invitation(
        Invitation(
            token_hash=token_hash(token),
            user_id=user.id,
            created_at=now,
            expires_at=now + timedelta(hours=services.settings.invitation_ttl_hours),
        )
    )
    await audit.record(
        services,
        "invitation_created",
        actor_id=actor_id,
        target_id=user.id,
        expires_at=invitation.expires_at.isoformat(),
    )
    log.info("invitation created", extra={"user_id": user.id})
    await services.bus.publish(
        InvitationCreated(user_id=user.id, token=token, expires_at=invitation.expires_at, project_title=project_title)
    )
    return invitation


async def resend_invitation(services: Services, actor: User, user_id: str) -> Invitation:
    """An admin sends a person a new link (the old ones stop working)."""
    if not actor.is_admin:
        raise Forbidden("only an admin can send invitations")
    user = await services.store.get_user(user_id)
    if user is None:
        raise NotFound("user not found")
    if not user.active:
        raise InvalidPayload("the user is disabled; enable them first")
    return await create_invitation(services, user, actor_id=actor.id)


async def accept_invitation(services: Services, *, token: str, password: str, client_ip: str = "") -> tuple[str, User]:
    """Set the invited person's password, use up the link, and sign them in: (session token, user).

    A wrong, revoked, expired or used link is refused (InvitationInvalid, InvitationExpired, InvitationUsed) and
    changes nothing. Attempts count against the sign-in limit per address."""
    services.login_ip_limiter.check(client_ip)
    hashed = token_hash(token)
    invitation = await services.store.get_invitation(hashed)
    now = utcnow()
    user = await _open_invitation_user(services, invitation, now)
    password_hash = await services.passwords.hash(password)
    accepted = await services.store.accept_invitation(hashed, password_hash, now)
    if accepted is None:  # used or revoked a moment ago, by another request
        await _open_invitation_user(services, await services.store.get_invitation(hashed), utcnow())
        raise InvitationUsed("this link has been used already; sign in with your password")
    await audit.record(services, "invitation_accepted", actor_id=user.id, target_id=user.id)
    log.info("invitation accepted", extra={"user_id": user.id})
    await services.bus.publish(SessionsRevoked(user_id=user.id))  # a new password: older sessions end
    return services.tokens.issue(user.id), user


async def _open_invitation_user(services: Services, invitation: Invitation | None, now: datetime) -> User:
    """The user of an invitation that can still be used; the right refusal otherwise."""
    if invitation is None:
        raise InvitationInvalid(_NOT_VALID)
    if invitation.used_at is not None:
        raise InvitationUsed("this link has been used already; sign in with your password")
    if invitation.revoked_at is not None:
        raise InvitationExpired("a newer link was sent for this account; use the newest email")
    if invitation.expires_at <= now:
        raise InvitationExpired("this link has expired; ask the bank's contact for a new one")
    user = await services.store.get_user(invitation.user_id)
    if user is None or not user.active:
        raise InvitationInvalid(_NOT_VALID)
    return user
