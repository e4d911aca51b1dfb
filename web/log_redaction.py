"""Keeps secrets out of every log line, whichever logger writes it (Tornado's own line about a
malformed request quotes the raw header, which can hold the session cookie) and in whatever
quoting or escaping the line carries them.

Redaction happens when a record is made (a log record factory), so every logger (Tornado's,
asyncio's, ours, a library's) and every handler (the service's stderr, a test's capture) gets
the redacted record, in text and JSON alike."""

from __future__ import annotations

import logging
import re
from typing import Any

from auth.access_tokens import JWT_SHAPE
from auth.personal_tokens import PERSONAL_TOKEN_SHAPE
from auth.tokens import COOKIE_NAME, TOKEN_SHAPE

REDACTED = "***"
# The cookie's value after its name, as a header line, a repr (`\x01`, `\\"`), JSON (`\"`) or a
# dict's repr (`'refreshToken': '…'`) carries it: everything from the `=` or `:` to the next
# cookie's `;`, a space or the end. Stopping at a quote or a backslash, as a value's own
# characters would suggest, left `refreshToken="<token>"\x01` whole in the log; taking a few
# characters too many is the safe side.
_COOKIE_VALUE = re.compile(rf"({re.escape(COOKIE_NAME)}\\*['\"]?\s*[=:]\s*)[^;\s]*", re.IGNORECASE)
# The Authorization header's value (an access token, the metrics token, whatever a client sends),
# however quoted: everything from the `:` or `=` to the end of the line. A secret may hold any
# character, a quote or a `;` too, so no earlier end is safe; what follows it on a line that
# shows several headers is lost, the safe side.
_AUTHORIZATION_VALUE = re.compile(r"(authorization\\*['\"]?\s*[=:]\s*)[^\r\n]*", re.IGNORECASE)
# A Bearer credential without its header's name (Tornado's line about a malformed header quotes
# only the value: `Invalid header value 'Bearer <token>\x00'`): likewise to the end of the line.
_BEARER_VALUE = re.compile(r"(\bbearer\s+)[^\r\n]*", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` without any refreshToken or Authorization value, and (a second net, for a token
    that arrives without its name) without anything shaped like a session, access or personal token."""
    for secret_value in (_COOKIE_VALUE, _AUTHORIZATION_VALUE, _BEARER_VALUE):
        text = secret_value.sub(rf"\g<1>{REDACTED}", text)
    # Personal tokens first: a cookie's shape is not within one, but keep each pattern whole.
    return JWT_SHAPE.sub(rf"\g<1>{REDACTED}", TOKEN_SHAPE.sub(REDACTED, PERSONAL_TOKEN_SHAPE.sub(REDACTED, text)))


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # arguments that do not format: the handler would print them raw
        record.msg, record.args = redact(str(record.msg)) + " [arguments not shown]", None
        return
    redacted = redact(message)
    if redacted != message:
        record.msg, record.args = redacted, None
    if record.exc_info and not record.exc_text:
        # Formatters use this text, once set, instead of formatting the traceback themselves.
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class _RedactingFactory:
    """Wraps the record factory in place, so that whatever made the record, it is redacted."""

    def __init__(self, make: Any) -> None:
        self.make = make

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = self.make(*args, **kwargs)
        _redact_record(record)
        return record


def install() -> None:
    """Idempotent: the factory is wrapped once."""
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _RedactingFactory):
        logging.setLogRecordFactory(_RedactingFactory(factory))
