"""Delivery projects: registered by the service platform, moved through their stages, staffed automatically."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..errors import Conflict, Forbidden, InvalidPayload, InvalidStageMove, NotFound
from ..events import RoomCreated, RoomUpdated
from ..models import NEXT_STAGE, STAGES, Project, Room, Stage, User, new_id, utcnow
from ..schemas import PlatformPerson, PlatformProject
from ..services import Services
from ..storage import DuplicateKey
from . import accounts, audit, invitations, rooms

STAGE_NAMES = {"presales": "售前", "implementation": "售中", "aftersales": "售后", "closed": "结项"}
ROLE_NAMES = {
    "account_manager": "客户经理",
    "solution_expert": "方案专家",
    "service_specialist": "服务专员",
    "developer": "研发人员",
    "after_sales": "售后值班",
}
_PLATFORM = "platform"
_NEVER = datetime.min.replace(tzinfo=UTC)


async def register_project(services: Services, payload: PlatformProject, *, delivery_id: str) -> tuple[Project, bool]:
    """Create a project, its room and its people from the platform's payload. Returns (project, created).

    Idempotent: a repeated delivery id, or an external id that exists, answers with the existing project."""
    unknown = [p for p in payload.products if p not in services.settings.products]
    if unknown:  # a product nobody can be skilled in could never be staffed or served
        raise InvalidPayload(f"products: {', '.join(unknown)} not among {', '.join(services.settings.products)}")
    people = await _resolve_people(services, payload)
    seen = await services.store.claim_delivery(_PLATFORM, delivery_id, payload.external_id, utcnow())
    existing = await services.store.get_project_by_external_id(seen or payload.external_id)
    if existing is not None:
        return existing, False

    # The project is stored with the id of its room from the start: a concurrent delivery of the same project
    # that finds it a moment later answers with a project that has its room, never with `room_id: null`.
    project = Project(
        id=new_id("p"),
        external_id=payload.external_id,
        name=payload.name,
        client_org=payload.client_org,
        products=list(dict.fromkeys(payload.products)),
        stage="presales",
        room_id=new_id("r"),
    )
    try:
        await services.store.create_project(project)
    except DuplicateKey:  # registered by a concurrent delivery a moment ago
        raced = await services.store.get_project_by_external_id(payload.external_id)
        if raced is None:
            raise
        return raced, False
    await audit.record(
        services,
        "project_created",
        actor_id=None,
        target_id=project.id,
        external_id=project.external_id,
        delivery_id=delivery_id,
    )
    title = f"{payload.client_org} · {payload.name}"
    for person, user in people:
        await _create_missing(services, person, user, project_title=title)
    assert project.room_id is not None
    room = await services.store.create_room(
        Room(id=project.room_id, kind="project", title=title, project_id=project.id)
    )
    await services.bus.publish(RoomCreated(room_id=room.id))
    for person, user in people:
        await rooms.add_member(services, room_id=room.id, user_id=user.id, role=person.role)
        if user.is_staff:
            await services.store.record_assignment(project.id, user.id, person.role, utcnow())
    await rooms.post_system_message(services, room.id, f"项目已登记，当前阶段：{STAGE_NAMES['presales']}。")
    for stage in STAGES[1 : STAGES.index(payload.stage) + 1]:  # registered in a later stage: walk up to it
        project = await _move(services, project, stage)
    return project, True


async def change_stage(services: Services, external_id: str, stage: Stage, *, delivery_id: str) -> tuple[Project, bool]:
    """Move a project one step along presales → implementation → aftersales → closed. Returns (project, moved).

    A repeated delivery id, or a move to the stage the project is already in, changes nothing. The delivery id is
    claimed whatever comes of it (404 and refused moves too), so no delivery applies on a later replay."""
    seen = await services.store.claim_delivery(_PLATFORM, delivery_id, f"stage:{external_id}:{stage}", utcnow())
    project = await services.store.get_project_by_external_id(external_id)
    if project is None:
        raise NotFound("project not found")
    if seen is not None or project.stage == stage:
        return project, False
    if NEXT_STAGE.get(project.stage) != stage:
        await audit.record(
            services,
            "stage_changed",
            actor_id=None,
            outcome="failure",
            room_id=project.room_id,
            target_id=project.id,
            stage_from=project.stage,
            stage_to=stage,
        )
        raise InvalidStageMove(f"a project in {project.stage} cannot move to {stage}")
    try:
        return await _move(services, project, stage), True
    except InvalidStageMove:
        # Another delivery moved it meanwhile. If it made this very move, this one is a repeat: it changes nothing.
        current = await services.store.get_project_by_external_id(external_id)
        if current is not None and current.stage == stage:
            return current, False
        raise


async def _move(services: Services, project: Project, stage: Stage) -> Project:
    moved = await services.store.update_project(project.id, stage=stage, expected_stage=project.stage)
    if moved is None:
        raise InvalidStageMove("the project's stage changed meanwhile; retry")
    await audit.record(
        services,
        "stage_changed",
        actor_id=None,
        room_id=moved.room_id,
        target_id=moved.id,
        stage_from=project.stage,
        stage_to=stage,
    )
    if moved.room_id and stage == "closed":  # first: no message can land after the notice that closes the room
        await rooms.set_read_only(services, moved.room_id, True)
    if moved.room_id:
        await rooms.post_system_message(
            services, moved.room_id, f"项目阶段变更：{STAGE_NAMES[project.stage]} → {STAGE_NAMES[stage]}。"
        )
    if stage == "implementation":
        for role in ("service_specialist", "developer"):
            moved = await _assign_one(services, moved, role)
    elif stage == "aftersales":
        moved = await _add_duty_staff(services, moved)
    if moved.room_id and stage != "closed":
        await services.bus.publish(RoomUpdated(room_id=moved.room_id))
    return moved


async def _assign_one(services: Services, project: Project, role: str) -> Project:
    """Give the project one person in `role`: among active staff with that role and a skill in one of its
    products, the one with the fewest open projects; ties go to the one assigned longest ago."""
    assert project.room_id is not None
    members = await services.store.list_members(project.room_id)
    if any(m.role == role for m in members):
        return project
    in_room = {m.user_id for m in members}  # one membership, one role: a member is not taken out of theirs
    candidates = [
        u
        for u in await services.store.list_users()
        if u.active and u.is_staff and role in u.roles and set(u.skills) & set(project.products) and u.id not in in_room
    ]
    if not candidates:
        return await _unstaffed(services, project, role)
    loads = await services.store.assignment_loads([u.id for u in candidates])
    chosen = min(candidates, key=lambda u: (loads[u.id][0], loads[u.id][1] or _NEVER, u.id))
    await rooms.add_member(services, room_id=project.room_id, user_id=chosen.id, role=role)
    await services.store.record_assignment(project.id, chosen.id, role, utcnow())
    await rooms.post_system_message(services, project.room_id, f"已自动分配{ROLE_NAMES[role]}：{chosen.name}。")
    return project


async def _add_duty_staff(services: Services, project: Project) -> Project:
    assert project.room_id is not None
    on_duty = [
        u
        for u in await services.store.list_users()
        if u.active and u.is_staff and "after_sales" in u.roles and set(u.duty) & set(project.products)
    ]
    if not on_duty:
        return await _unstaffed(services, project, "after_sales")
    in_room = {m.user_id for m in await services.store.list_members(project.room_id)}
    joining = [u for u in on_duty if u.id not in in_room]  # those in the room already keep the role they have
    for user in joining:
        await rooms.add_member(services, room_id=project.room_id, user_id=user.id, role="after_sales")
        await services.store.record_assignment(project.id, user.id, "after_sales", utcnow())
    if joining:
        names = "、".join(u.name for u in joining)
        await rooms.post_system_message(services, project.room_id, f"售后值班人员已加入：{names}。")
    return project


async def _unstaffed(services: Services, project: Project, role: str) -> Project:
    why = "本项目产品暂无售后值班人员" if role == "after_sales" else "无人具备本项目产品技能"
    unstaffed = list(dict.fromkeys([*project.unstaffed, role]))
    updated = await services.store.update_project(project.id, unstaffed=unstaffed) or project
    if project.room_id:
        await rooms.post_system_message(
            services, project.room_id, f"暂无可分配的{ROLE_NAMES[role]}（{why}），已提交管理员处理。"
        )
    await audit.record(
        services,
        "staffing_failed",
        actor_id=None,
        outcome="failure",
        room_id=project.room_id,
        target_id=project.id,
        role=role,
    )
    return updated


async def _resolve_people(services: Services, payload: PlatformProject) -> list[tuple[PlatformPerson, User]]:
    """Each person in the payload with the user they are: existing (checked) or to be created (not stored yet)."""
    resolved: list[tuple[PlatformPerson, User]] = []
    seen: set[str] = set()
    for index, person in enumerate(payload.people):
        if person.username in seen:
            raise InvalidPayload(f"people.{index}: {person.username} is listed twice")
        seen.add(person.username)
        is_client = person.role == "client_contact"
        user = await services.store.get_user_by_username(person.username)
        if user is None:
            user = User(
                id="",
                username=person.username,
                name=person.name,
                org=payload.client_org if is_client else (person.org or services.settings.bank_org),
                kind="client" if is_client else "staff",
                roles=["client_member"] if is_client else [person.role],
                email=person.email,
            )
        elif is_client != (user.kind == "client") or user.kind == "bot":
            raise InvalidPayload(
                f"people.{index}: {person.username} is not a {'client' if is_client else 'staff'} user"
            )
        elif is_client and user.org != payload.client_org:
            raise InvalidPayload(f"people.{index}: {person.username} belongs to another company")
        resolved.append((person, user))
    return resolved


async def _create_missing(services: Services, person: PlatformPerson, user: User, *, project_title: str) -> None:
    """Create a person the payload names and the server does not know; with an email address, they are invited to
    set a password (a person a concurrent registration created is invited by that one)."""
    if user.id:
        return
    try:
        created = await accounts.create_user(
            services,
            None,
            username=user.username,
            name=user.name,
            org=user.org,
            kind=user.kind,
            roles=user.roles,
            email=user.email,
        )
    except Conflict:
        # Created a moment ago by a concurrent registration that names the same new person: use that user.
        raced = await services.store.get_user_by_username(user.username)
        if raced is None or raced.kind != user.kind or (user.kind == "client" and raced.org != user.org):
            raise
        user.id = raced.id
        return
    user.id = created.id
    if created.email:
        await invitations.create_invitation(services, created, project_title=project_title)


async def list_projects(services: Services, user: User) -> list[dict[str, Any]]:
    """The staff board: the projects whose rooms the user is in (an admin: every project)."""
    if not user.is_staff:
        raise Forbidden("the project board is for bank staff")
    projects = await services.store.list_projects()
    if not user.is_admin:
        mine = {m.room_id for m in await services.store.list_memberships(user.id)}
        projects = [p for p in projects if p.room_id in mine]
    return [p.to_wire(admin_view=user.is_admin) for p in projects]
