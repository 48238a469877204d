"""Mention emails: queued when a message mentions someone who is away, claimed in one batch per person when due.

The rules (docs/protocol.md, "Email notifications"):
- Queued for a person the message mentions (a new message, or an edit that adds them) who has no open connection
  at that moment, is active, has an email address, and may read the message. Never queued twice for the same
  person and message (the store keeps one record per pair, forever).
- Due once the person's oldest pending mention has waited `mail_mention_delay_seconds`. Then every pending mention of
  theirs is looked at again, and those still worth an email go into one email. Dropped (`skipped`) instead: the
  message was deleted, no longer mentions them, or they have read it (their read marker is at or past its seq);
  they are disabled, have no email address, are no longer in the room; it is an internal note and they are a client;
  or they have a connection open now (they are in the app and see it there).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from ..models import MentionEmail, Message, Room, User, utcnow
from ..services import Services

log = logging.getLogger("chatserver.mail")


@dataclass(frozen=True, slots=True)
class MentionedMessage:
    message: Message
    room: Room
    sender: User
    # What the message replies to, when the recipient may read it: a hand-off ("已通知服务专员 @刘婷 跟进") means
    # little without the question it answers.
    quoted: Message | None = None
    quoted_sender: User | None = None


@dataclass(frozen=True, slots=True)
class MentionDigest:
    """The messages claimed for one email to one person (already marked `sent` in the store)."""

    user: User
    items: list[MentionedMessage]

    @property
    def message_ids(self) -> list[str]:
        return [item.message.id for item in self.items]


def _may_be_emailed(user: User | None) -> bool:
    return user is not None and user.active and user.kind != "bot" and bool(user.email)


async def queue_mention_emails(
    services: Services, message: Message, *, mentioned_before: tuple[str, ...] = ()
) -> list[str]:
    """Queue an email for the people `message` newly mentions who are away now. Returns whom it queued."""
    if message.deleted:
        return []
    newly = [uid for uid in message.mentions if uid not in mentioned_before and uid != message.sender_id]
    away = [uid for uid in newly if not services.presence.is_online(uid)]
    if not away:
        return []
    users = await services.store.get_users(away)
    wanted = [
        uid
        for uid in away
        if _may_be_emailed(users.get(uid)) and not (message.internal and users[uid].kind == "client")
    ]
    if not wanted:
        return []
    queued = await services.store.queue_mention_emails(message.id, message.room_id, wanted, utcnow())
    if queued:
        log.info("mention emails queued", extra={"room_id": message.room_id, "count": len(queued)})
    return queued


async def oldest_pending_mentions(services: Services) -> dict[str, datetime]:
    """For each person with pending mentions, when the oldest was queued (their batch is due `delay` after it)."""
    oldest: dict[str, datetime] = {}
    for pending in await services.store.list_mention_emails(state="pending"):
        oldest.setdefault(pending.user_id, pending.queued_at)
    return oldest


async def claim_mention_digest(services: Services, user_id: str) -> MentionDigest | None:
    """Look at the person's pending mentions again: mark those no longer worth an email `skipped`, claim the rest
    (`sent`) and return them for one email, or None if none is left. Claiming is a compare-and-set: of two
    processes flushing at once, one gets each mention."""
    store = services.store
    now = utcnow()
    pending = await store.list_mention_emails(state="pending", user_id=user_id)
    if not pending:
        return None
    user = await store.get_user(user_id)
    keep: list[MentionedMessage] = []
    drop: list[str] = []
    online = services.presence.is_online(user_id)
    for record in pending:
        item = None if online or not _may_be_emailed(user) else await _still_relevant(services, user, record)
        if item is None:
            drop.append(record.message_id)
        else:
            keep.append(item)
    if drop:
        await store.finish_mention_emails(user_id, drop, state="skipped", expected="pending", at=now)
    if not keep or user is None:
        return None
    claimed = set(
        await store.finish_mention_emails(
            user_id, [item.message.id for item in keep], state="sent", expected="pending", at=now
        )
    )
    items = [item for item in keep if item.message.id in claimed]
    items.sort(key=lambda item: (item.message.created_at, item.message.room_id, item.message.seq))
    return MentionDigest(user=user, items=items) if items else None


async def release_mention_digest(services: Services, digest: MentionDigest) -> None:
    """The email could not be sent: put its mentions back in line for the next try."""
    await services.store.finish_mention_emails(
        digest.user.id, digest.message_ids, state="pending", expected="sent", at=utcnow()
    )


async def _still_relevant(services: Services, user: User | None, record: MentionEmail) -> MentionedMessage | None:
    store = services.store
    if user is None:
        return None
    message = await store.get_message(record.message_id)
    if message is None or message.deleted or user.id not in message.mentions:
        return None
    if message.internal and user.kind == "client":
        return None
    membership = await store.get_membership(message.room_id, user.id)
    if membership is None or membership.last_read_seq >= message.seq:
        return None
    room = await store.get_room(message.room_id)
    sender = await store.get_user(message.sender_id)
    if room is None or sender is None:
        return None
    quoted = await store.get_message(message.reply_to) if message.reply_to else None
    if quoted is not None and (
        quoted.deleted or quoted.room_id != message.room_id or (quoted.internal and user.kind == "client")
    ):
        quoted = None
    quoted_sender = await store.get_user(quoted.sender_id) if quoted is not None else None
    if quoted_sender is None:
        quoted = None
    return MentionedMessage(message=message, room=room, sender=sender, quoted=quoted, quoted_sender=quoted_sender)
