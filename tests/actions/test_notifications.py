"""Mention emails as the actions queue and claim them (actions/notifications.py), through the real services."""

from __future__ import annotations

import asyncio

from chatserver.actions import messages, notifications, rooms
from chatserver.models import Message, User
from chatserver.services import Services

from .conftest import World


async def with_email(services: Services, *users: User) -> None:
    for user in users:
        await services.store.update_user(user.id, email=f"{user.username}@example.com")


async def mention(services: Services, world: World, text: str, **kw: object) -> Message:
    message, _ = await messages.send_message(
        services,
        world.wang,
        room_id=world.xinghe.id,
        text=text,
        client_msg_id=f"c-{text}",
        **kw,  # type: ignore[arg-type]
    )
    return message


async def test_only_away_people_with_an_address_who_may_read_it_are_queued(services: Services, world: World) -> None:
    await with_email(services, world.li, world.chen, world.admin)
    services.presence.connect(world.admin.id, "sid-1")  # 赵敏 has the app open

    message = await mention(services, world, "@李娜 @陈思远 @孙浩 @赵敏 请看")
    note = await mention(services, world, "@陈思远 内部", internal=True)

    assert await notifications.queue_mention_emails(services, message) == [world.li.id, world.chen.id]  # 孙浩: no email
    assert await notifications.queue_mention_emails(services, message) == []  # never twice
    assert await notifications.queue_mention_emails(services, note) == [world.chen.id]


async def test_an_edit_queues_only_the_people_it_adds(services: Services, world: World) -> None:
    await with_email(services, world.li, world.sun)
    message = await mention(services, world, "@李娜 请看")
    edited, _ = await messages.edit_message(services, world.wang, message_id=message.id, text="@李娜 @孙浩 请看")

    queued = await notifications.queue_mention_emails(services, edited, mentioned_before=tuple(message.mentions))

    assert queued == [world.sun.id]


async def test_a_claim_drops_what_is_no_longer_worth_an_email(services: Services, world: World) -> None:
    await with_email(services, world.li, world.sun, world.chen)
    keep = await mention(services, world, "@李娜 @孙浩 @陈思远 一")
    unmentioned = await mention(services, world, "@李娜 二")
    for message in (keep, unmentioned):
        await notifications.queue_mention_emails(services, message)
    await messages.edit_message(services, world.wang, message_id=unmentioned.id, text="不再提到谁")
    await rooms.remove_member(services, room_id=world.xinghe.id, user_id=world.sun.id)
    await services.store.update_user(world.chen.id, active=False)

    digest = await notifications.claim_mention_digest(services, world.li.id)
    assert digest is not None and digest.message_ids == [keep.id]
    assert await notifications.claim_mention_digest(services, world.sun.id) is None  # left the room
    assert await notifications.claim_mention_digest(services, world.chen.id) is None  # disabled
    skipped = await services.store.list_mention_emails(state="skipped")
    assert {(s.user_id, s.message_id) for s in skipped} == {
        (world.li.id, unmentioned.id),
        (world.sun.id, keep.id),
        (world.chen.id, keep.id),
    }


async def test_two_flushes_at_once_claim_each_mention_once(services: Services, world: World) -> None:
    await with_email(services, world.li)
    for number in range(5):
        await notifications.queue_mention_emails(services, await mention(services, world, f"@李娜 第{number}条"))

    first, second = await asyncio.gather(
        notifications.claim_mention_digest(services, world.li.id),
        notifications.claim_mention_digest(services, world.li.id),
    )

    claimed = [*(first.message_ids if first else []), *(second.message_ids if second else [])]
    assert len(claimed) == 5 and len(set(claimed)) == 5


async def test_a_released_digest_is_pending_again(services: Services, world: World) -> None:
    await with_email(services, world.li)
    await notifications.queue_mention_emails(services, await mention(services, world, "@李娜 请看"))
    digest = await notifications.claim_mention_digest(services, world.li.id)
    assert digest is not None

    await notifications.release_mention_digest(services, digest)

    again = await notifications.claim_mention_digest(services, world.li.id)
    assert again is not None and again.message_ids == digest.message_ids
