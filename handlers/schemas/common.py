"""Models and field types shared by every area of the API."""

from __future__ import annotations

from typing import Annotated, Any, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema


class RequestModel(BaseModel):
    """Base of request bodies: unknown keys are refused, so no `$`-operator can reach a query."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, strict=True)


class FieldError(BaseModel):
    field: str
    message: str


class Message(BaseModel):
    """Every non-payload answer, success or error: `code` equals the HTTP status."""

    data: str
    code: int
    errors: list[FieldError] | None = None
    # With more invalid fields than `errors` lists (at most 20): how many there were.
    error_count: int | None = None


def _json_integer(value: Any, info: ValidationInfo) -> Any:
    """A whole number as JSON Schema's `integer` means it: any JSON number without a fraction, so
    `3.0` is one (a generated client may send it); a string, a boolean or a fraction is not. From a
    query string (web.errors.FROM_QUERY_STRING), where every value is text, plain ASCII digits: not
    `1_0`, `+5`, ` 7` or `١٠`, which Python's int() would all take."""
    if isinstance(value, str) and info.context and info.context.get("query_string"):
        if not (value.isascii() and value.isdigit()):
            raise ValueError("must be a whole number written with digits only")
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a whole number")
    return value


JsonInt = Annotated[int, BeforeValidator(_json_integer)]


# The paging fields of every list's answer, described once.
PAGE_TOTAL = "How many items the request matches in all, not the page's size: the last page ends at `max`"
PAGE_FROM = "The place of the page's first item among all, from 0 (the request's `offset`)"
PAGE_TO = "The place after the page's last item (`from` + the items on the page)"


def capped_limit(cap: int) -> str:
    """The description of a `limit` that is capped, not refused."""
    return f"At most this many items; a larger number is taken as {cap} (not refused)"


# Texts of answers, as the document publishes them. The fields stay `str`: a value edited by hand in
# the database is answered as stored, never turned into a 500.
DateTimeText = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
DateText = Annotated[str, WithJsonSchema({"type": "string", "format": "date"})]


def one_of(values: Any) -> WithJsonSchema:
    """An answer's text that is one of a Literal's values, as the document publishes it."""
    return WithJsonSchema({"type": "string", "enum": list(get_args(values))})


def unwrap_key_object(value: Any) -> Any:
    """The published web client sends enum values as `{"key": "<value>"}`."""
    if isinstance(value, dict) and set(value) == {"key"}:
        return value["key"]
    return value


class _AcceptsKeyObject:
    """Validation unwraps `{"key": value}`; the JSON schema says both forms are taken."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_before_validator_function(unwrap_key_object, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        plain = handler(schema)
        if handler.mode == "serialization":
            return plain  # an answer always holds the plain value
        return {"anyOf": [plain, {"type": "object", "properties": {"key": plain}, "required": ["key"],
                                  "additionalProperties": False}]}


AcceptsKeyObject = _AcceptsKeyObject()
