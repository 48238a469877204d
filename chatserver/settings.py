"""Settings: defaults, then a TOML file, then `CHAT_*` environment variables, then command-line flags.

A bad value stops start-up with a `SettingsError` that names the setting.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .models import STAGES, RoomKind, Stage
from .text import EMAIL_MAX_LENGTH, EMAIL_PATTERN

ENV_PREFIX = "CHAT_"
_BOT_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
SECRET_FIELDS = frozenset(
    {
        "jwt_secret",
        "platform_secret",
        "mail_smtp_password",
        "ticketing_token",
        "ticketing_webhook_secret",
        "llm_api_key",
    }
)
_EMAIL = re.compile(EMAIL_PATTERN)


class SettingsError(Exception):
    """A setting is unknown or has a bad value; the message names it."""


def _all_room_kinds() -> list[RoomKind]:
    return ["project", "expert"]


def _open_stages() -> list[Stage]:
    return [stage for stage in STAGES if stage != "closed"]


class BotSettings(BaseModel):
    """Where one bot is on: rooms of these kinds, and (project rooms) projects in these stages."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    room_kinds: list[RoomKind] = Field(default_factory=_all_room_kinds)
    stages: list[Stage] = Field(default_factory=_open_stages)  # closed rooms are read-only
    config: dict[str, Any] = Field(default_factory=dict)  # the bot's own settings, read through its context


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    data_dir: Path = Path("data")
    store_url: str = ""  # empty: sqlite:///<data_dir>/chat.db
    demo: bool = True

    jwt_secret: str | None = None  # empty: generated on first start, kept in <data_dir>/jwt_secret
    jwt_algorithm: str = "HS256"
    jwt_issuer: str = "cloud-advisor"
    jwt_audience: str = "cloud-advisor"
    token_ttl_seconds: int = Field(12 * 3600, ge=60, le=30 * 24 * 3600)

    allowed_origins: list[str] | None = None  # None: the server's own origin only
    metrics_allow: list[str] = Field(default_factory=lambda: ["127.0.0.0/8", "::1/128"])

    max_text_chars: int = Field(10_000, ge=1, le=1_000_000)
    max_text_bytes: int = Field(32_000, ge=4, le=4_000_000)
    max_packet_bytes: int = Field(65_536, ge=1024, le=16 * 1024 * 1024)

    rate_send_per_second: float = Field(10.0, gt=0)
    rate_send_burst: int = Field(20, ge=1)
    rate_events_per_second: float = Field(30.0, gt=0)
    rate_events_burst: int = Field(60, ge=1)

    platform_secret: str | None = None  # shared secret of the service platform's signed requests
    bank_org: str = "云帆银行交易银行部"  # the organisation of staff created from the platform's payloads
    products: list[str] = Field(default_factory=lambda: ["银企直连", "司库"])  # products experts can be asked about

    # Tickets (`/ticket`): kept by the server itself unless `ticketing_url` names an outside ticket system, which is
    # then called with `Authorization: Bearer <ticketing_token>` and reports status changes to
    # POST /api/webhooks/tickets, signed with `ticketing_webhook_secret` (unset: every such webhook is refused).
    ticketing_url: str = ""
    ticketing_token: str | None = None
    ticketing_webhook_secret: str | None = None
    ticketing_timeout_seconds: float = Field(3.0, gt=0, le=60)  # per call; below bot_timeout_seconds

    rate_login_per_minute: int = Field(10, ge=1)  # sign-in attempts per address and username
    rate_login_ip_per_minute: int = Field(60, ge=1)  # sign-in attempts per address, whatever the username

    # Bots by name; a bot not listed here runs with BotSettings' defaults. Names are checked against the
    # bots there are when the app is built (create_app).
    bots: dict[str, BotSettings] = Field(default_factory=dict)
    bot_timeout_seconds: float = Field(10.0, gt=0, le=300)  # per bot, per event

    # The AI advisor's model: an OpenAI-compatible chat API (e.g. DeepSeek). No base URL: the advisor answers from
    # retrieval alone. The advisor needs the answer within its bot time limit, so the model's must be shorter.
    llm_base_url: str = ""  # e.g. https://api.deepseek.com
    llm_api_key: str | None = None
    llm_model: str = "deepseek-chat"
    llm_timeout_seconds: float = Field(8.0, gt=0, le=120)  # one whole call: connect, wait, read

    # The address people reach the web client at, for links in emails and those sent to the ticket system;
    # empty: http://<host>:<port>.
    public_url: str = ""

    # Email out. Without mail_smtp_host, emails are written as .eml files to mail_outbox_dir (default
    # <data_dir>/outbox/); with it, they go to that SMTP server.
    mail_from: str = "noreply@cloud-advisor.local"
    mail_from_name: str = "云顾问"
    mail_outbox_dir: Path | None = None
    mail_smtp_host: str | None = None
    mail_smtp_port: int = Field(587, ge=1, le=65535)
    mail_smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    mail_smtp_username: str | None = None
    mail_smtp_password: str | None = None
    mail_smtp_ca_file: Path | None = None  # a CA bundle (PEM) to check the SMTP server's certificate against
    mail_smtp_timeout_seconds: float = Field(30.0, gt=0, le=600)
    mail_mention_delay_seconds: float = Field(120.0, ge=0, le=24 * 3600)  # wait this long, then one email per person
    mail_retry_seconds: float = Field(60.0, gt=0, le=24 * 3600)  # after a failed send
    invitation_ttl_hours: float = Field(72.0, gt=0, le=30 * 24)  # how long a link to set a password works

    session_check_seconds: float = Field(15.0, gt=0)  # how often sockets are checked against disables made elsewhere
    shutdown_grace_seconds: float = Field(10.0, ge=0)
    log_level: str = "INFO"

    @field_validator("bots")
    @classmethod
    def _bot_names(cls, value: dict[str, BotSettings]) -> dict[str, BotSettings]:
        for name in value:
            if not _BOT_NAME.fullmatch(name) or name == "system":
                raise ValueError(f"{name!r} is not a bot name (lowercase letters, digits, _ ; not 'system')")
        return value

    @field_validator("llm_base_url")
    @classmethod
    def _llm_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if value and (parts.scheme not in {"http", "https"} or not parts.hostname or parts.password is not None):
            raise ValueError("must be an http(s) URL such as https://api.deepseek.com (the key goes in llm_api_key)")
        return value

    @model_validator(mode="after")
    def _llm_fits(self) -> Settings:
        if not self.llm_base_url:
            return self
        if not self.llm_api_key:
            raise ValueError("llm_api_key: needed when llm_base_url is set")
        if self.llm_timeout_seconds > self.bot_timeout_seconds - 1:
            raise ValueError(
                "llm_timeout_seconds: must be at least 1 second shorter than bot_timeout_seconds "
                f"({self.bot_timeout_seconds}), so the advisor can still answer from retrieval when the model is late"
            )
        return self

    @field_validator("jwt_algorithm")
    @classmethod
    def _pinned_algorithm(cls, value: str) -> str:
        if value not in {"HS256", "HS384", "HS512"}:
            raise ValueError("must be one of HS256, HS384, HS512")
        return value

    @field_validator("store_url")
    @classmethod
    def _supported_store(cls, value: str) -> str:
        if value and not (value.startswith("sqlite:///") and len(value) > len("sqlite:///")):
            raise ValueError("must be sqlite:///path/to/file.db (relative) or sqlite:////absolute/path.db")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return level

    @field_validator("ticketing_url")
    @classmethod
    def _ticketing_url(cls, value: str) -> str:
        if value and not (urlsplit(value).scheme in {"http", "https"} and urlsplit(value).hostname):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _ticketing_token_given(self) -> Settings:
        if self.ticketing_url and not self.ticketing_token:
            raise ValueError("ticketing_url needs ticketing_token (the outside ticket system's API token)")
        return self

    @field_validator("jwt_secret", "platform_secret", "ticketing_webhook_secret")
    @classmethod
    def _strong_secret(cls, value: str | None) -> str | None:
        if value is not None and len(value) < 32:
            raise ValueError("must be at least 32 characters")
        return value

    @field_validator("public_url")
    @classmethod
    def _web_address(cls, value: str) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query or parts.fragment:
            raise ValueError("must be an http:// or https:// address without query or fragment")
        if any(char.isspace() for char in value):
            raise ValueError("must not contain spaces or line breaks")
        return value.rstrip("/")

    @field_validator("mail_smtp_ca_file")
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a file")
        return value

    @field_validator("mail_from")
    @classmethod
    def _sender_address(cls, value: str) -> str:
        if len(value) > EMAIL_MAX_LENGTH or not _EMAIL.fullmatch(value):
            raise ValueError("must be an email address (name@example.com)")
        return value

    @field_validator("mail_from_name", "mail_smtp_host", "mail_smtp_username")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and ("\r" in value or "\n" in value):
            raise ValueError("must not contain a line break")
        return value

    @property
    def resolved_store_url(self) -> str:
        return self.store_url or f"sqlite:///{self.data_dir / 'chat.db'}"

    @property
    def resolved_public_url(self) -> str:
        if self.public_url:
            return self.public_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def resolved_outbox_dir(self) -> Path:
        return self.mail_outbox_dir or self.data_dir / "outbox"

    def public_view(self) -> dict[str, Any]:
        """The settings as `show-config` prints them: secrets hidden, and passwords inside URLs too."""
        view = self.model_dump(mode="json")
        for name in SECRET_FIELDS:
            if view.get(name):
                view[name] = "***"
        for name, value in view.items():
            if name.endswith("_url") and isinstance(value, str) and "@" in value:
                parts = urlsplit(value)
                if parts.password:
                    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}"
                    view[name] = urlunsplit(parts._replace(netloc=netloc + (f":{parts.port}" if parts.port else "")))
        return view


_LIST_FIELDS = {name for name, f in Settings.model_fields.items() if str(f.annotation).startswith("list")}
_JSON_FIELDS = {name for name, f in Settings.model_fields.items() if str(f.annotation).startswith("dict")}


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name not in Settings.model_fields:
            raise SettingsError(f"unknown setting {key}")
        if name in _JSON_FIELDS:  # e.g. CHAT_BOTS='{"help": {"room_kinds": ["project"]}}'
            try:
                values[name] = json.loads(raw)
            except ValueError as exc:
                raise SettingsError(f"{key} is not valid JSON: {exc}") from exc
        elif name in _LIST_FIELDS:
            values[name] = [part.strip() for part in raw.split(",") if part.strip()]
        else:
            values[name] = raw
    return values


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            with open(config_file, "rb") as fh:
                values.update(tomllib.load(fh))
        except OSError as exc:
            raise SettingsError(f"cannot read config file {config_file}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {config_file} is not valid TOML: {exc}") from exc
    values.update(_from_env(os.environ if environ is None else environ))
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(f"bad setting: {problems}") from exc
