"""The one clock of the service: aware UTC, at MongoDB's millisecond precision."""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> datetime:
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
