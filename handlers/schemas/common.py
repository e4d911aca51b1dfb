"""Models and field types shared by every area of the API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, BeforeValidator, ConfigDict


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


def unwrap_key_object(value: Any) -> Any:
    """The published web client sends enum values as `{"key": "<value>"}`."""
    if isinstance(value, dict) and set(value) == {"key"}:
        return value["key"]
    return value


AcceptsKeyObject = BeforeValidator(unwrap_key_object)
