"""How log lines are written: readable text (the default) or, with `LOG_FORMAT=json`, one JSON
object a line for a log collector. Secrets are already gone by then (web.log_redaction)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# What an access line adds, as `extra=` of the log call: method, route, path, status, duration_ms, user.
ACCESS_FIELDS = ("method", "route", "status", "duration_ms", "user")


class JsonLines(logging.Formatter):
    """{"time", "level", "logger", "message"}, the access fields when the line has them, and
    "exception" with the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _access_message(record) if hasattr(record, "route") else record.getMessage(),
        }
        line.update({name: getattr(record, name) for name in ACCESS_FIELDS if hasattr(record, name)})
        if record.exc_info:
            # The redacted text, when the record has one (web.log_redaction sets it).
            line["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def _access_message(record: logging.LogRecord) -> str:
    """An access line's message with the route's pattern where the text line has the raw path,
    which can name users and entries (`-` when no route matched): a JSON line is for machines
    that keep and index it."""
    fields = record.__dict__
    return f"{fields['method']} {fields['route']} {fields['status']} {fields['duration_ms']:.1f}ms user={fields['user']}"


def configure_logging(level: str, log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=getattr(logging, level.upper()), handlers=[handler], force=True)
    # The driver's own debug output can include command documents; keep it quiet.
    logging.getLogger("pymongo").setLevel(logging.WARNING)
    logging.getLogger("tornado.access").setLevel(logging.CRITICAL)
