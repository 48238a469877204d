"""Structured log lines: one JSON object per line.

Only the fields named in `_SAFE_FIELDS` are copied from a record's extras, so message text, tokens
and passwords cannot reach the log by accident.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_SAFE_FIELDS = (
    "user_id",
    "actor_id",
    "sid",
    "room_id",
    "message_id",
    "event_type",
    "code",
    "outcome",
    "path",
    "in_flight",
    "url",
    "count",
    "seconds",
    "reason",
    "bot",
    "where",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage() if record.name.startswith("chatserver") else record.msg,
        }
        for name in _SAFE_FIELDS:
            if name in record.__dict__:
                line[name] = record.__dict__[name]
        if "error" in record.__dict__:  # an error's type given without its message (bots/runner.py)
            line["error"] = record.__dict__["error"]
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__
            line["trace"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The Socket.IO libraries log packet contents (message text) at INFO; keep them to warnings.
    for noisy in ("socketio", "engineio", "socketio.server", "engineio.server"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("aiosmtplib").setLevel(logging.WARNING)  # its debug lines would carry what is sent
