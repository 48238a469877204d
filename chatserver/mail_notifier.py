"""Email notifications: a bus subscriber that never holds up delivery, and the tasks that send the emails.

- The subscriber (`MailNotifier.__call__`) only puts the events it cares about in an inbox: a message or an edit
  that mentions someone (`MessageSent`, `MessageEdited`), and `InvitationCreated`.
- A worker takes them in order: mentions are queued in the store (`actions.notifications.queue_mention_emails`:
  only people who are away at that moment), invitations are emailed at once (retried a few times).
- A flusher sleeps until the next batch is due (`mail_mention_delay_seconds` after a person's oldest pending
  mention), then claims each due person's batch and sends one email listing it. Pending mentions are in the store,
  so a restart loses none; each (person, message) is emailed at most once. A send that fails puts the batch back
  and is tried again after `mail_retry_seconds` (up to `_MAX_ATTEMPTS` times in this process).

Logs name people by id, never their address, message text or an invitation's link.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any

from integrations.mail import HeaderInjection, Mailer, MentionItem

from .actions import notifications
from .events import Event, InvitationCreated, MessageEdited, MessageSent
from .models import utcnow
from .services import Services

log = logging.getLogger("chatserver.mail")

_INBOX_SIZE = 10_000
_MAX_ATTEMPTS = 5
_NEVER = 24 * 3600.0  # with nothing pending, the flusher waits to be woken


class MailNotifier:
    def __init__(self, services: Services, mailer: Mailer) -> None:
        self._services = services
        self._mailer = mailer
        self._inbox: asyncio.Queue[Event | None] = asyncio.Queue(_INBOX_SIZE)  # None: the worker is to stop
        self._worker: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._not_before: dict[str, datetime] = {}  # people whose last send failed: not again before then
        self._failures: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def transport_description(self) -> str:
        return self._mailer.transport.description

    # the subscriber --------------------------------------------------------------------------------
    async def __call__(self, event: Event) -> None:
        match event:
            case MessageSent(message=m) | MessageEdited(message=m) if m.mentions:
                pass
            case InvitationCreated():
                pass
            case _:
                return
        try:
            self._inbox.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("mail inbox full; event dropped", extra={"event_type": type(event).__name__})

    # lifecycle -------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._worker = self._spawn(self._work())
        self._spawn(self._flush_loop())  # mentions left pending by the last run fall due as they would have

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Queue in the store the mentions still in the inbox (a message sent just before shutdown is still
        emailed after the restart), then stop."""
        if self._worker is not None and not self._worker.done():
            with contextlib.suppress(asyncio.QueueFull):
                self._inbox.put_nowait(None)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._worker), grace_seconds)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _spawn(self, job: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # the worker ------------------------------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            event = await self._inbox.get()
            if event is None:
                return
            try:
                match event:
                    case MessageSent(message=m):
                        if await notifications.queue_mention_emails(self._services, m):
                            self._wake.set()
                    case MessageEdited(message=m, mentions_before=before):
                        if await notifications.queue_mention_emails(self._services, m, mentioned_before=before):
                            self._wake.set()
                    case InvitationCreated():
                        self._spawn(self._send_invitation(event))
            except Exception as exc:
                log.warning("mail event failed", extra={"event_type": type(event).__name__, "error": _name(exc)})

    async def _send_invitation(self, event: InvitationCreated) -> None:
        services = self._services
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            user = await services.store.get_user(event.user_id)
            if user is None or not user.email or not user.active:
                return
            try:
                await self._mailer.send_invitation(
                    to_name=user.name,
                    to_addr=user.email,
                    username=user.username,
                    link=f"{services.settings.resolved_public_url}/#invite={event.token}",
                    expires_at=event.expires_at,
                    project_title=event.project_title,
                )
            except (HeaderInjection, ValueError) as exc:  # this address or name can never go into an email
                log.error("invitation email refused", extra={"user_id": user.id, "error": _name(exc)})
                return
            except Exception as exc:
                log.warning(
                    "invitation email failed", extra={"user_id": user.id, "error": _name(exc), "count": attempt}
                )
                await asyncio.sleep(services.settings.mail_retry_seconds)
                continue
            log.info("invitation email sent", extra={"user_id": user.id})
            return
        log.error("invitation email given up; an admin can send a new one", extra={"user_id": event.user_id})

    # the flusher -----------------------------------------------------------------------------------
    async def _flush_loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                timeout = await self.flush()
            except Exception as exc:  # the store failing now and then must not end the notifier
                log.warning("mention emails: flush failed", extra={"error": _name(exc)})
                timeout = self._services.settings.mail_retry_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def flush(self) -> float:
        """Send every batch that is due. Returns how long until the next one is (seconds)."""
        services = self._services
        now = utcnow()
        delay = timedelta(seconds=services.settings.mail_mention_delay_seconds)
        oldest = await notifications.oldest_pending_mentions(services)
        next_due: datetime | None = None
        for user_id, queued_at in oldest.items():
            due = max(queued_at + delay, self._not_before.get(user_id, queued_at))
            if due > now:
                next_due = due if next_due is None else min(next_due, due)
                continue
            if not await self._send_batch(user_id):
                retry = self._not_before[user_id]
                next_due = retry if next_due is None else min(next_due, retry)
        for user_id in [u for u in self._not_before if u not in oldest]:
            del self._not_before[user_id]
        return _NEVER if next_due is None else max(0.0, (next_due - utcnow()).total_seconds())

    async def _send_batch(self, user_id: str) -> bool:
        """Claim and send one person's batch; False if it failed and waits to be tried again."""
        services = self._services
        digest = await notifications.claim_mention_digest(services, user_id)
        if digest is None:
            return True
        base = services.settings.resolved_public_url
        items = [
            MentionItem(
                room_title=item.room.title,
                link=f"{base}/#room={item.room.id}",
                sender_name=item.sender.name,
                sender_org=item.sender.org,
                sender_external=item.sender.kind == "client",
                text=item.message.text,
                created_at=item.message.created_at,
                internal=item.message.internal,
                quoted_text=item.quoted.text if item.quoted is not None else None,
                quoted_sender=item.quoted_sender.name if item.quoted_sender is not None else None,
            )
            for item in digest.items
        ]
        try:
            await self._mailer.send_mention_digest(
                to_name=digest.user.name, to_addr=digest.user.email or "", items=items
            )
        except (HeaderInjection, ValueError) as exc:  # can never be sent: keep it claimed, never try again
            log.error("mention email refused", extra={"user_id": user_id, "error": _name(exc)})
            return True
        except asyncio.CancelledError:  # shutting down mid-send: the next start sends it (the store is still open)
            await asyncio.shield(notifications.release_mention_digest(services, digest))
            raise
        except Exception as exc:
            failures = self._failures.get(user_id, 0) + 1
            if failures >= _MAX_ATTEMPTS:
                self._failures.pop(user_id, None)
                log.error("mention email given up", extra={"user_id": user_id, "error": _name(exc)})
                return True
            self._failures[user_id] = failures
            await notifications.release_mention_digest(services, digest)
            self._not_before[user_id] = utcnow() + timedelta(seconds=services.settings.mail_retry_seconds)
            log.warning("mention email failed", extra={"user_id": user_id, "error": _name(exc), "count": failures})
            return False
        self._failures.pop(user_id, None)
        self._not_before.pop(user_id, None)
        log.info("mention email sent", extra={"user_id": user_id, "count": len(items)})
        return True


def _name(exc: BaseException) -> str:
    return type(exc).__name__
