"""One family of errors, mapped once to Socket.IO acks and to HTTP responses."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ValidationError


class ChatError(Exception):
    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        return {"ok": False, "error": {"code": self.code, "message": self.message}}


class InvalidPayload(ChatError):
    code = "invalid_payload"
    status = 400


class EmptyText(ChatError):
    code = "empty_text"
    status = 400


class TextTooLong(ChatError):
    code = "text_too_long"
    status = 400


class Unauthorized(ChatError):
    code = "unauthorized"
    status = 401


class Forbidden(ChatError):
    code = "forbidden"
    status = 403


class RoomReadOnly(ChatError):
    code = "room_read_only"
    status = 403


class NotFound(ChatError):
    code = "not_found"
    status = 404


class Conflict(ChatError):
    code = "conflict"
    status = 409


class InvalidStageMove(ChatError):
    code = "invalid_stage_move"
    status = 409


class InvitationInvalid(ChatError):
    code = "invitation_invalid"
    status = 400


class InvitationExpired(ChatError):
    code = "invitation_expired"
    status = 410


class InvitationUsed(ChatError):
    code = "invitation_used"
    status = 410


class InvalidStatusChange(ChatError):
    code = "invalid_status_change"
    status = 409


class TicketingUnavailable(ChatError):
    """The outside ticket system refused, failed or did not answer in time (HTTP mode)."""

    code = "ticketing_unavailable"
    status = 502


class RateLimited(ChatError):
    code = "rate_limited"
    status = 429


class Unavailable(ChatError):
    code = "unavailable"
    status = 503


def invalid_payload_from(exc: ValidationError) -> InvalidPayload:
    """A short, readable message naming the first bad field."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "payload"
    return InvalidPayload(f"{where}: {err['msg']}")


def internal_error_dict() -> dict[str, Any]:
    return {"ok": False, "error": {"code": "internal_error", "message": "internal server error"}}
