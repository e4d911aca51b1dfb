"""Models and field types shared by every area of the API."""

from __future__ import annotations

import re
from typing import Annotated, Any, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

# Python's whitespace (what str.strip takes off), as a character class that reads the same in
# Python's re and in JSON Schema's ECMA-262, whose `\s` is another set (it has U+FEFF and lacks
# U+001C to U+001F): the document's patterns use it, never `\s`.
WHITESPACE = r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Whitespace and control characters (Unicode's Cc, U+0000 to U+001F and U+007F to U+009F): a
# search made of these only is no search.
BLANK = r"\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_BLANK_TEXT = re.compile(f"[{BLANK}]*")
_BLANK_ENDS = re.compile(f"^[{BLANK}]+|[{BLANK}]+$")


def unblanked(text: str) -> str | None:
    """A search as it is matched: without blank characters at its ends; None when nothing else is left."""
    if _BLANK_TEXT.fullmatch(text):
        return None
    return _BLANK_ENDS.sub("", text)


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


def _json_integer(value: Any) -> Any:
    """A whole number as JSON Schema's `integer` means it: any JSON number without a fraction, so
    `3.0` is one (a generated client may send it); a string, a boolean or a fraction is not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a whole number")
    return value


JsonInt = Annotated[int, BeforeValidator(_json_integer)]


def _count(value: Any) -> Any:
    """A list's count: a JSON whole number, or its digits as text. Plain ASCII digits: not `1_0`,
    `+5`, ` 7` or `١٠`, which Python's int() would all take."""
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()):
            raise ValueError("must be a whole number written with digits only")
        return int(value)
    return _json_integer(value)


def _digits_pattern(minimum: int, maximum: int | None) -> str:
    """The texts of the whole numbers from `minimum` (0 or 1) to `maximum` (a power of ten, or
    none), leading zeros allowed, as a pattern."""
    first = {0: "[0-9]", 1: "[1-9]"}[minimum]
    if maximum is None:
        return f"^0*{first}[0-9]*$" if minimum else "^[0-9]+$"
    digits = len(str(maximum)) - 1
    assert maximum == 10**digits, "a count's maximum is a power of ten"
    return f"^0*(?:{first}[0-9]{{0,{digits - 1}}}|{maximum})$"


class Count:
    """A list's `limit` or `offset`, from `minimum` to `maximum`: a JSON whole number or its digits
    as text, since the same parameters come in a query string and, from the web client, as a JSON
    body (the schema publishes both). Used as `Annotated[int, Count(0, 10_000)]`."""

    def __init__(self, minimum: int, maximum: int | None = None) -> None:
        self.minimum, self.maximum = minimum, maximum

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_before_validator_function(
            _count, core_schema.int_schema(ge=self.minimum, le=self.maximum))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        number: dict[str, Any] = {"type": "integer", "minimum": self.minimum}
        if self.maximum is not None:
            number["maximum"] = self.maximum
        return {"anyOf": [number, {"type": "string", "pattern": _digits_pattern(self.minimum, self.maximum)}]}


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
