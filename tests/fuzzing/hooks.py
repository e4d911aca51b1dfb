"""schemathesis hooks for tests/test_schema_fuzzing.py (loaded through SCHEMATHESIS_HOOKS).

Two rules of request bodies compare values, which JSON Schema cannot say; the operations'
descriptions say them and other tests hold the service to them, so generated data is put in line
with them here and every other value is left as generated:
- a reading status's `end` is not before its `start` (a status body, and each status of an account
  file): dates generated the other way round are swapped (tests/test_reading_status.py);
- an account file's lists hold one entry per series (statuses, ratings) or volume (collection): a
  generated repeat is dropped (tests/test_account_file.py).

A generated `Idempotency-Key` is replaced by a fresh one when it is a valid key: schemathesis draws
keys from their pattern and soon sends the same one with another body, which the service rightly
answers 422 (a key names one request). A client that follows the header's contract sends a new key
per request; the replay of a key is tests/test_idempotency.py's business. An invalid key is left as
generated, so that its 400 is still checked."""

from __future__ import annotations

import re
import sys
import uuid
from pathlib import Path
from typing import Any

import schemathesis

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from partial_dates import PARTIAL_DATE_PATTERN, ends_before_start  # noqa: E402

_VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and _VALID_KEY.fullmatch(key):
        case.headers["Idempotency-Key"] = f"fuzz-{uuid.uuid4()}"
    body = case.body
    if not isinstance(body, dict):
        return
    _in_order(body)
    for name, key in _UNIQUE_BY.items():
        entries = body.get(name)
        if isinstance(entries, list):
            seen: set[Any] = set()
            kept = []
            for entry in entries:
                value = entry.get(key) if isinstance(entry, dict) else None
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    if value in seen:
                        continue
                    seen.add(value)
                if name == "reading_statuses" and isinstance(entry, dict):
                    _in_order(entry)
                kept.append(entry)
            body[name] = kept


# An account file's lists, each unique by this field.
_UNIQUE_BY = {"reading_statuses": "series_id", "ratings": "series_id", "collection": "volume_id"}


def _in_order(status: dict[str, Any]) -> None:
    if _is_date(status.get("start")) and _is_date(status.get("end")) and ends_before_start(status["start"],
                                                                                           status["end"]):
        status["start"], status["end"] = status["end"], status["start"]


def _is_date(value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(PARTIAL_DATE_PATTERN, value) is not None
