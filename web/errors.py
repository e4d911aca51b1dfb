"""The one exception a handler raises to answer with an error, and how errors become JSON."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from formats.problems import FileProblem, NotThisKind, TooLarge, Unreadable
from handlers.schemas.common import FieldError

MISSING_PARAMETERS = "Required parameters missing"
INVALID_PARAMETERS = "Invalid parameters"
# What `errors` says of a field that is missing (pydantic's own words, where the service adds one).
FIELD_REQUIRED = "Field required"
# A body of another media type on a route that reads JSON: 415, as a file route answers a file of
# another kind (RFC 9110, 15.5.16).
NOT_JSON = "Request body must be JSON (Content-Type: application/json)"
BODY_TOO_LARGE = "Request body too large"
UNAUTHORIZED = "Unauthorized"
FORBIDDEN = "Forbidden"
# A GET that writes, sent without proof that a trusted page sent it (web.same_origin).
CROSS_SITE_REFUSED = "Cross-site request refused"
USER_NOT_FOUND = "User not found"
INVALID_CREDENTIALS = "Invalid credentials"
TOO_MANY_REQUESTS = "Too many requests."
INTERNAL_ERROR = "Internal server error"
SERVICE_UNAVAILABLE = "Service unavailable"
# A write the user's document has no room for (507): answered by `ApiHandler.write_error`.
USER_DOCUMENT_FULL = "Your lists are too large to store more"
# Answered by the server itself (web.connections) to a request that arrives too slowly.
REQUEST_TIMEOUT = "Request timeout"

# Messages for errors that Tornado itself raises (routing, methods, framing).
STANDARD_MESSAGES = {
    400: "Bad request",
    404: "Not found",
    405: "Method not allowed",
    413: BODY_TOO_LARGE,
    500: INTERNAL_ERROR,
    503: SERVICE_UNAVAILABLE,
}


# An answer names at most this many field errors, and how many there were in all.
MAX_LISTED_ERRORS = 20


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: list[FieldError] | None = None,
                 error_count: int | None = None, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.error_count = error_count  # when more errors were found than `errors` lists
        self.retry_after = retry_after  # a 429's seconds to wait (`Retry-After`)


def message_body(status: int, message: str, errors: list[FieldError] | None = None,
                 error_count: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"data": message, "code": status}
    if errors:
        body["errors"] = [error.model_dump() for error in errors]
    if error_count is not None:
        body["error_count"] = error_count
    return body


M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: Any) -> M:
    """Validates input against `model`; a missing field is 400 "Required parameters missing",
    anything else malformed is 400 "Invalid parameters", both naming the fields."""
    try:
        return model.model_validate(data)
    except ValidationError as failure:
        raise validation_error(failure) from None


def validation_error(failure: ValidationError) -> ApiError:
    """The 400 for a failed validation: the first MAX_LISTED_ERRORS fields, one error each, and
    the count of all when there were more. Linear in the errors (the body's bounds keep those
    few: see web.json_input)."""
    details = failure.errors(include_input=False, include_url=False, include_context=False)
    fields: set[str] = set()
    listed: list[FieldError] = []
    for error in details:
        field = ".".join(str(part) for part in error["loc"]) or "body"
        if field not in fields and len(listed) < MAX_LISTED_ERRORS:
            listed.append(FieldError(field=field, message=error["msg"].removeprefix("Value error, ")))
        fields.add(field)
    missing = any(error["type"] == "missing" for error in details)
    return ApiError(400, MISSING_PARAMETERS if missing else INVALID_PARAMETERS, listed,
                    len(fields) if len(fields) > len(listed) else None)


def file_refusal(problem: FileProblem) -> ApiError:
    """The answer to a file its format refuses (formats.problems): 415 for another kind of
    file, 413 past a limit, 400 for one that cannot be read, naming the field at fault."""
    if isinstance(problem, NotThisKind):
        return ApiError(415, str(problem))
    if isinstance(problem, TooLarge):
        return ApiError(413, str(problem))
    field = problem.field if isinstance(problem, Unreadable) else None
    reason = problem.reason if isinstance(problem, Unreadable) else None
    return ApiError(400, str(problem), [FieldError(field=field, message=reason)] if field and reason else None)
