"""Keeps secrets out of every log line, including the lines Tornado itself writes (a malformed
request is logged with its raw header line, which can hold the session cookie)."""

from __future__ import annotations

import logging
import re

# The cookie's value in any form a log line can carry it: a header line, a repr, a URL.
_SECRET = re.compile(r"(refreshToken=)[^;\s'\"\\]*", re.IGNORECASE)
TORNADO_LOGGERS = ("tornado.general", "tornado.application", "tornado.access")


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SECRET.sub(r"\1***", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def install() -> None:
    """Idempotent: each Tornado logger gets one filter."""
    for name in TORNADO_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
