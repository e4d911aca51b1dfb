"""Request bodies as JSON: the media type, the bounded reading (formats.json_reading) and the
answer to a body that is not JSON or holds too much."""

from __future__ import annotations

from typing import Any

from formats.json_reading import JsonLimits, JsonRefused, parse_json
from handlers.schemas.common import FieldError
from web.errors import INVALID_PARAMETERS, NOT_JSON, ApiError

# A JSON route's body is at most 256 KB and its models hold a few dozen values: this is far
# above any real body and bounds what `[1,1,...]` can build to a few MB.
DEFAULT_JSON_LIMITS = JsonLimits(max_values=20_000)


def require_json_content_type(content_type: str) -> None:
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise ApiError(415, NOT_JSON)


def read_json_body(body: bytes, content_type: str, limits: JsonLimits = DEFAULT_JSON_LIMITS) -> Any:
    """A request body as JSON, or None when there is none; ApiError for anything else."""
    if not body or body.isspace():
        return None
    require_json_content_type(content_type)
    try:
        parsed = parse_json(body, limits)
    except JsonRefused as refused:
        raise ApiError(413, str(refused)) from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "Request body is not valid JSON") from None
    if parsed is None:
        # `null` is a body that is not an object, like `[]` or `5`; only no body at all means
        # "no fields" (a list route's defaults).
        raise ApiError(400, INVALID_PARAMETERS, [FieldError(field="body", message="Input should be an object, not null")])
    return parsed
