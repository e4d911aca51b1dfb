"""The one clock of the service: aware UTC, at MongoDB's millisecond precision."""

from __future__ import annotations

from datetime import datetime, timezone


def iso_utc(instant: datetime) -> str:
    """How the API writes an instant: ISO 8601 in UTC with a `Z`."""
    return instant.isoformat().replace("+00:00", "Z")


def utc_now() -> datetime:
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
