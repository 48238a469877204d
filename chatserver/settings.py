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
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .models import STAGES, RoomKind, Stage

ENV_PREFIX = "CHAT_"
_BOT_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
SECRET_FIELDS = frozenset({"jwt_secret", "platform_secret", "llm_api_key"})


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
    def _http_url(cls, value: str) -> str:
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

    @field_validator("jwt_secret", "platform_secret")
    @classmethod
    def _strong_secret(cls, value: str | None) -> str | None:
        if value is not None and len(value) < 32:
            raise ValueError("must be at least 32 characters")
        return value

    @property
    def resolved_store_url(self) -> str:
        return self.store_url or f"sqlite:///{self.data_dir / 'chat.db'}"

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
