"""schemathesis hooks for tests/test_schema_fuzzing.py (loaded through SCHEMATHESIS_HOOKS).

Three rules of request bodies are beyond JSON Schema; the operations' descriptions say them and
other tests hold the service to them, so generated data is put in line with them here and every
other value is left as generated:
- a price has at most two decimals (a float's decimals are not JSON Schema's to say): a generated
  price within the range is rounded to the cent (tests/test_collection.py);
- a reading status's `end` is not before its `start` (a status body, and each status of an account
  file): dates generated the other way round are swapped (tests/test_reading_status.py);
- an account file's lists hold one entry per series (statuses, ratings) or volume (collection): a
  generated repeat is dropped (tests/test_account_file.py).

A file or an image is put in when the body is generated as valid: any bytes are schema-valid for a
MyAnimeList file and any text for a base64 image, but JSON Schema cannot say what makes either one,
so a generated one is answered 400 naming the fault (the routes' own tests cover those answers).
With a real file and a real image in the positive cases, the checks hold those routes' parameters
to the document like every other route's.

A generated `Idempotency-Key` is replaced by a fresh one when it is a valid key: schemathesis draws
keys from their pattern and soon sends the same one with another body, which the service rightly
answers 422 (a key names one request). A client that follows the header's contract sends a new key
per request; the replay of a key is tests/test_idempotency.py's business. An invalid key is left as
generated, so that its 400 is still checked."""

from __future__ import annotations

import base64
import io
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import schemathesis
from PIL import Image
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.modes import GenerationMode

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from formats.account_file import UNIQUE_BY  # noqa: E402
from partial_dates import PARTIAL_DATE_PATTERN, ends_before_start  # noqa: E402

_MAL_FILE = (b'<?xml version="1.0" encoding="UTF-8" ?>\n<myanimelist><myinfo><user_export_type>2</user_export_type>'
             b"</myinfo></myanimelist>\n")
_picture = io.BytesIO()
Image.new("RGB", (8, 8), "teal").save(_picture, "PNG")
_IMAGE = base64.b64encode(_picture.getvalue()).decode()

_VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and _VALID_KEY.fullmatch(key):
        case.headers["Idempotency-Key"] = f"fuzz-{uuid.uuid4()}"
    body = case.body
    if _body_is_valid(case):
        if case.operation.path == "/user/import/mal":
            case.body = _MAL_FILE
        elif isinstance(body, dict) and isinstance(body.get("image"), str):
            body["image"] = _IMAGE
    if not isinstance(body, dict):
        return
    _in_order(body)
    price = body.get("price")
    if isinstance(price, float) and 0 <= price <= 100_000:
        body["price"] = round(price, 2)
    for name, key in UNIQUE_BY.items():
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


def _in_order(status: dict[str, Any]) -> None:
    if _is_date(status.get("start")) and _is_date(status.get("end")) and ends_before_start(status["start"],
                                                                                           status["end"]):
        status["start"], status["end"] = status["end"], status["start"]


def _body_is_valid(case: Any) -> bool:
    component = case.meta.components.get(ParameterLocation.BODY) if case.meta is not None else None
    return component is not None and component.mode == GenerationMode.POSITIVE


def _is_date(value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(PARTIAL_DATE_PATTERN, value) is not None
