"""Payload shapes of the client → server events and REST bodies, validated strictly.

Strict: no coercion (`123` is not a room id, `"5"` is not a seq), unknown fields refused, and
objects never stand where strings belong (so `{"$ne": null}` is just a wrong type).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from .errors import InvalidPayload, invalid_payload_from
from .text import EMAIL_MAX_LENGTH, EMAIL_PATTERN, has_visible, unsafe_character

Id = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=64)]
Seq = Annotated[int, Field(strict=True, ge=0, le=2**53)]
Text = Annotated[str, Field(strict=True)]
Flag = Annotated[bool, Field(strict=True)]
Username = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9._-]{2,64}$")]
Password = Annotated[str, StringConstraints(strict=True, min_length=8, max_length=256)]


def _shown_as_written(value: str) -> str:
    """A name, organisation or title: something visible, on one line, read as it is written."""
    problem = unsafe_character(value, multiline=False)
    if problem:
        raise ValueError(problem)
    if not has_visible(value):
        raise ValueError("must contain something visible")
    return value


Name = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_shown_as_written),
]
Role = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=64)]


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SendMessage(Payload):
    room_id: Id
    text: Text
    client_msg_id: Id
    reply_to: Id | None = None
    internal: Flag = False


class GetHistory(Payload):
    room_id: Id
    before_seq: Seq | None = None
    after_seq: Seq | None = None
    limit: Annotated[int, Field(strict=True, ge=1, le=100)] = 50


class MarkRead(Payload):
    room_id: Id
    seq: Seq


class SetTyping(Payload):
    room_id: Id
    typing: Flag


class EditMessage(Payload):
    message_id: Id
    text: Text


class DeleteMessage(Payload):
    message_id: Id


class ListRooms(Payload):
    pass


class GetMembers(Payload):
    room_id: Id


class Login(Payload):
    username: Annotated[str, StringConstraints(strict=True, max_length=256)]
    password: Annotated[str, StringConstraints(strict=True, max_length=1024)]


class AcceptInvitation(Payload):
    token: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=256)]
    password: Password


class CreateUser(Payload):
    username: Username
    name: Name
    org: Name
    kind: Annotated[str, StringConstraints(strict=True, pattern=r"^(staff|client|bot)$")]
    roles: list[Role] = Field(default_factory=list, max_length=16)
    password: Password | None = None
    active: Flag = True


class UpdateUser(Payload):
    name: Name | None = None
    org: Name | None = None
    roles: list[Role] | None = Field(default=None, max_length=16)
    active: Flag | None = None
    password: Password | None = None
    email: Email | None = None
    skills: list[Product] | None = Field(default=None, max_length=20)  # products, for automatic staffing
    duty: list[Product] | None = Field(default=None, max_length=20)  # products on after-sales duty for
    max_sessions: MaxSessions | None = None  # concurrent expert sessions


P = TypeVar("P", bound=Payload)


def parse(model: type[P], payload: Any) -> P:
    """Validate a payload, or raise InvalidPayload naming the first bad field."""
    if payload is None and not model.model_fields:
        payload = {}
    if isinstance(payload, (bytes, bytearray, memoryview)):
        raise InvalidPayload("binary attachments are not accepted")
    if not isinstance(payload, dict):
        raise InvalidPayload("payload must be a JSON object")
    if _has_unpaired_surrogate(payload):
        raise InvalidPayload("payload contains invalid characters (unpaired surrogates)")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        if _has_binary(payload):
            raise InvalidPayload("binary attachments are not accepted") from exc
        raise invalid_payload_from(exc) from exc


def _values(payload: Any) -> Iterator[Any]:
    """Every key and value inside a payload, walked without recursion (payloads may nest deeply)."""
    stack = [payload]
    while stack:
        value = stack.pop()
        yield value
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def _has_binary(payload: Any) -> bool:
    return any(isinstance(v, (bytes, bytearray, memoryview)) for v in _values(payload))


def _has_unpaired_surrogate(payload: Any) -> bool:
    for value in _values(payload):
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


MaxSessions = Annotated[int, Field(strict=True, ge=0, le=50)]
ProjectRole = Annotated[
    str,
    StringConstraints(
        strict=True,
        pattern=r"^(account_manager|solution_expert|service_specialist|developer|after_sales|client_contact)$",
    ),
]
StageName = Annotated[str, StringConstraints(strict=True, pattern=r"^(presales|implementation|aftersales|closed)$")]
Email = Annotated[str, StringConstraints(strict=True, max_length=EMAIL_MAX_LENGTH, pattern=EMAIL_PATTERN)]
Product = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=40),
    AfterValidator(_shown_as_written),
]
ExternalId = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9._:-]{1,64}$")]


class PlatformPerson(Payload):
    username: Username
    name: Name
    role: ProjectRole
    org: Name | None = None
    email: Email | None = None


class PlatformProject(Payload):
    external_id: ExternalId
    name: Name
    client_org: Name
    products: list[Product] = Field(min_length=1, max_length=10)
    stage: StageName = "presales"
    people: list[PlatformPerson] = Field(default_factory=list, max_length=200)


class StageChange(Payload):
    # The signature covers the body, not the URL: naming the project in the body too means a signed
    # stage move cannot be replayed against another project's URL.
    external_id: ExternalId
    stage: StageName


class RequestExpert(Payload):
    product: Product
    text: Text
    for_client_id: Id | None = None


class TransferSession(Payload):
    room_id: Id
    to_user_id: Id | None = None
    product: Product | None = None
    note: Annotated[str, StringConstraints(strict=True, max_length=2000)] = ""


class CloseSession(Payload):
    room_id: Id


class GetExpertSession(Payload):
    room_id: Id


class RateSession(Payload):
    room_id: Id
    rating: Annotated[int, Field(strict=True, ge=1, le=5)]
    comment: Annotated[str, StringConstraints(strict=True, max_length=1000)] | None = None


class ListProjects(Payload):
    pass


class GetExpertConsole(Payload):
    pass


TicketStatusName = Annotated[str, StringConstraints(strict=True, pattern=r"^(open|in_progress|resolved|closed)$")]


class ChangeTicketStatus(Payload):
    status: TicketStatusName


class TicketWebhook(Payload):
    # The signature covers the body, not the URL: the body names the ticket, so a signed change cannot be
    # replayed against another ticket.
    key: ExternalId  # the ticket's key in the outside system
    status: TicketStatusName
    # The ticket's version in the outside system after this change (optional): a later version is news, an
    # earlier or equal one is stale (a late echo of a change the server made, or a delivery overtaken by another).
    version: Seq | None = None


UpdateUser.model_rebuild()
