"""Models and field types shared by every area of the API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema


class RequestModel(BaseModel):
    """Base of request bodies: unknown keys are refused, so no `$`-operator can reach a query."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


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
        return {"anyOf": [plain, {"type": "object", "properties": {"key": plain}, "required": ["key"],
                                  "additionalProperties": False}]}


AcceptsKeyObject = _AcceptsKeyObject()
