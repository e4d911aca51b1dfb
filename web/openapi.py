"""Route declarations and the OpenAPI 3.1 document built from them and the pydantic models."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from auth.personal_tokens import READ
from handlers.schemas.common import FieldError, Message
from web import conditional, idempotency, same_origin
from web.errors import (
    BODY_TOO_LARGE,
    CROSS_SITE_REFUSED,
    FORBIDDEN,
    INTERNAL_ERROR,
    INVALID_PARAMETERS,
    NOT_JSON,
    SERVICE_UNAVAILABLE,
    UNAUTHORIZED,
    ApiError,
)

if TYPE_CHECKING:
    from web.base import ApiHandler

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Answers:
    """A status whose message varies (each names the limit it passed): what the messages have in
    common, as the document's description, and one of them, exactly as answered, as its example.
    OpenAPI has one description per status."""

    description: str
    example: str


@dataclass(frozen=True)
class Operation:
    """What one method of one route does, for the OpenAPI document."""

    summary: str
    # status -> the message of a Message answer (its description and example), or its Answers
    responses: Mapping[int, str | Answers] = field(default_factory=dict)
    request: type[BaseModel] | None = None
    request_required: bool = True
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None  # the 200 payload, when it is not a Message
    response_status: int = 200  # the status `response` comes with (201 for what a POST makes)
    response_or_null: bool = False  # the 200 payload may be JSON null (nothing stored yet)
    # Answers that are not JSON (an image, a 304), as OpenAPI response objects by status.
    raw_responses: dict[int, dict[str, Any]] = field(default_factory=dict)
    # A body that is not JSON (an XML file): OpenAPI media type objects by content type.
    raw_request: dict[str, dict[str, Any]] = field(default_factory=dict)
    auth: bool = True
    permission: str | None = None
    # The personal token scope (auth.personal_tokens: `read` or `write`) the route takes; None: a
    # personal token is refused (403) here, whatever its scopes. Said once, enforced in
    # ApiHandler.prepare and published as the operation's security.
    scope: str | None = None
    tags: tuple[str, ...] = ()
    description: str | None = None  # what the summary leaves out, in Markdown
    # Whether a GET answers an ETag of its body, and 304 to an If-None-Match that names it
    # (web.conditional; done once, in ApiHandler.compute_etag). None: as every GET of the reader's
    # own data does, one that a personal token needs the scope `read` for.
    etag: bool | None = None
    # Whether the write honours If-Match (412 when the entry's tag is no longer the one named). The
    # verb does the check, in its write's filter; this publishes it.
    if_match: bool = False
    # The Cache-Control a GET's answer carries, as the document says it (public pages); None: the
    # default, `no-store`, which the document does not repeat on every operation.
    cache_control: str | None = None
    # The cookie the success answer sets, in words (the sign-in's refreshToken).
    sets_cookie: str | None = None
    # OpenAPI links from the success answer to the operations a client calls next on what it made:
    # name -> (the operation's "METHOD /path", its `id` parameter as a runtime expression).
    links: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def answers_etag(self, method: str) -> bool:
        """Whether `method` (lower case) of this operation answers an ETag (see `etag`)."""
        if method != "get":
            return False
        return self.etag if self.etag is not None else (self.auth and self.scope == READ)


@dataclass(frozen=True)
class PathParameter:
    """A path parameter that is not free text: the JSON Schema OpenAPI publishes, which the route
    enforces too (`ApiHandler.path_parameter`), and the answer to a value outside it: 400 for a
    malformed value (`reason` is the field's error), or 404 where any other text is merely a name
    that nothing has. The schema's `pattern`, `enum` and `maxLength` are enforced."""

    schema: dict[str, Any]
    refusal: tuple[int, str]
    reason: str | None = None

    def accepts(self, value: str) -> bool:
        pattern = self.schema.get("pattern")
        return ((pattern is None or re.fullmatch(pattern, value) is not None)
                and value in self.schema.get("enum", (value,))
                and len(value) <= self.schema.get("maxLength", len(value)))

    def refused(self, name: str) -> ApiError:
        status, message = self.refusal
        return ApiError(status, message, [FieldError(field=name, message=self.reason)] if self.reason else None)


@dataclass(frozen=True)
class Route:
    """A path in OpenAPI template form (`/users/{id}/save-settings`) and its handler;
    `path_parameters` declares the parameters that are not free text."""

    path: str
    handler: type[ApiHandler]
    path_parameters: dict[str, PathParameter] = field(default_factory=dict)

    @property
    def pattern(self) -> str:
        # Parameters may match empty so that the handler answers 400 "Required parameters missing",
        # and anything else, so that it answers what the parameter's declaration says.
        return _PLACEHOLDER.sub(lambda m: f"(?P<{m.group(1)}>[^/]*)", self.path)

    @property
    def parameters(self) -> list[str]:
        return _PLACEHOLDER.findall(self.path)


# A model's `$ref` by the role it has: a request body is published as pydantic validates it (in
# "validation" mode: what it takes, the `{"key": value}` forms included), an answer as the service
# writes it ("serialization": the plain values). A model in both roles whose two schemas differ
# (the account file: the import's body and the export's answer) is published twice: `AccountFile`
# as taken and `AccountFileAnswer` as written (pydantic's `-Input` and `-Output`, renamed by
# _named_by_role: a client generator names classes by the schemas' titles, which pydantic gives
# both the same).
SchemaRefs = Mapping[tuple[Any, JsonSchemaMode], dict[str, Any]]
REQUEST: JsonSchemaMode = "validation"
ANSWER: JsonSchemaMode = "serialization"


def _schema_ref(refs: SchemaRefs, model: type[BaseModel], role: JsonSchemaMode) -> dict[str, Any]:
    return dict(refs[(model, role)])


def _message_example(status: int, message: str | Answers) -> dict[str, Any]:
    answers = message if isinstance(message, Answers) else Answers(message, message)
    return {
        "description": answers.description,
        # Message is only ever an answer: its name is its own.
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Message"},
                                         "example": {"data": answers.example, "code": status}}},
    }


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(by_alias=True)
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required,
         "schema": _json_schema_limits(_query_value({k: v for k, v in prop.items() if k != "title"}))}
        for name, prop in schema.get("properties", {}).items()
    ]


def _is_key_object(schema: dict[str, Any]) -> bool:
    """The `{"key": value}` form a body's value may take (handlers.schemas.common.AcceptsKeyObject)."""
    return schema.get("type") == "object" and list(schema.get("properties", {})) == ["key"]


def _query_value(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema: what a query string can carry. The models the query shares with
    the POST form's body also take `{"key": value}` and `null` there; a query string can send
    neither (a generated client wrote `?order[key]=name-asc`, and `null` as `?since=`), so the
    query's schema is the plain value, and leaving the parameter out is its `null`."""
    branches = schema.get("anyOf")
    if not branches:
        return schema
    plain = [branch for branch in branches if not _is_key_object(branch) and branch.get("type") != "null"]
    if len(plain) == len(branches):
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf" and not (k == "default" and v is None)}
    return {**rest, **plain[0]} if len(plain) == 1 else {**rest, "anyOf": plain}


# web.json_input answers a JSON body that holds more than its route reads with formats.json_reading's message.
_JSON_TOO_LARGE = Answers(f"{BODY_TOO_LARGE}, or it holds more JSON values, or keys in one object, than the route "
                          "reads", BODY_TOO_LARGE)


def _common_answers(route: Route, method: str, op: Operation) -> list[tuple[int, str | Answers]]:
    """Answers an operation can give whatever its own logic: malformed input, the Origin check
    on a write, a body over its limit, a fault, the database unavailable."""
    answers: list[tuple[int, str | Answers]] = []
    if route.parameters or op.query is not None or op.request is not None:
        answers.append((400, INVALID_PARAMETERS))
    if same_origin.requires_same_origin(getattr(route.handler, method, None)):
        # The route's own refusal is the example; a personal token without the scope is the other 403.
        answers.append((403, Answers(f"{CROSS_SITE_REFUSED} (no proof that a trusted page sent it), or "
                                     f"{FORBIDDEN} (a personal token without the scope)", CROSS_SITE_REFUSED)))
    elif method in ("post", "put", "patch", "delete") or op.auth:
        answers.append((403, FORBIDDEN))  # a write from a foreign origin; a personal token without the scope
    if op.request is not None:
        answers.append((413, _JSON_TOO_LARGE))
        answers.append((415, NOT_JSON))
    if idempotency.is_idempotent(getattr(route.handler, method, None)):
        answers += [(400, idempotency.INVALID_KEY), (422, idempotency.KEY_REUSED)]
    answers.append((500, INTERNAL_ERROR))
    if route.handler.needs_database:
        answers.append((503, SERVICE_UNAVAILABLE))
    return answers


# Examples of request bodies and success answers, recorded from the tests' real traffic (a tour of
# the whole API: RECORD_OPENAPI_EXAMPLES=1 pytest tests/test_openapi_traffic.py), by
# "METHOD /path/{template}".
EXAMPLES_FILE = Path(__file__).with_name("openapi_examples.json")


@functools.cache
def recorded_examples() -> dict[str, dict[str, Any]]:
    return json.loads(EXAMPLES_FILE.read_text(encoding="utf-8")) if EXAMPLES_FILE.exists() else {}


def _with_examples(document: dict[str, Any], route: Route, method: str) -> dict[str, Any]:
    recorded = recorded_examples().get(f"{method.upper()} {route.path}", {})
    body = document.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None and "request" in recorded:
        body["example"] = recorded["request"]
    answered = next((status for status in ("200", "201") if status in document["responses"]), "200")
    answer = document["responses"].get(answered, {}).get("content", {}).get("application/json")
    if answer is not None and "response" in recorded and "example" not in answer:
        answer["example"] = recorded["response"]
    return document


IF_NONE_MATCH_PARAMETER: dict[str, Any] = {
    "name": conditional.IF_NONE_MATCH, "in": "header", "required": False,
    "description": "The `ETag` of an answer the client holds (or a list of them, or `*`): when it is still the "
                   "answer, 304 with no body. Compared weakly (`W/\"x\"` is `\"x\"`).",
    "schema": {"type": "string"},
}
IF_MATCH_PARAMETER: dict[str, Any] = {
    "name": conditional.IF_MATCH, "in": "header", "required": False,
    "description": "Change the entry only if it is still as the client saw it: the `ETag` its GET answered (for a "
                   "collection item, the item's `etag` in the collection list), or a list of them; `*` asks only "
                   "that it exist. When the entry changed since, 412 and nothing is changed. Compared strongly.",
    "schema": {"type": "string"},
}
ETAG_HEADER: dict[str, Any] = {"ETag": {"description": "A strong tag of this answer's bytes, for If-None-Match (and, "
                                                       "on an entry's GET, If-Match)",
                                        "schema": {"type": "string"}}}
RETRY_AFTER_HEADER: dict[str, Any] = {"Retry-After": {
    "description": "Whole seconds to wait before trying again: until the limit's window ends (a login, a "
                   "registration, a password check), or 1 when every password hash is busy. Every 429 has it.",
    "required": True, "schema": {"type": "integer", "minimum": 1}}}
WWW_AUTHENTICATE_HEADER: dict[str, Any] = {"WWW-Authenticate": {
    "description": "How to authenticate: `Bearer`, or `Bearer error=\"invalid_token\"` when the request sent a Bearer "
                   "token and it was refused (RFC 6750, 3.1): get a new one. Every 401 has it.",
    "required": True, "schema": {"type": "string"}}}
NOT_MODIFIED: dict[str, Any] = {"description": "Not modified: If-None-Match names the current answer (no body)",
                                "headers": ETAG_HEADER}


IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    "name": idempotency.HEADER, "in": "header", "required": False,
    "description": "Makes the write safe to retry: the same key with the same request, within 24 hours, answers "
                   "what the first answered (with `Idempotent-Replayed: true`) without writing again; with "
                   "another request, 422.",
    "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
}


# The `id` a link passes, as OpenAPI's runtime expressions: the request's own path `id` (a status or
# a rating is named by its series), or a field of the answer (a new collection item's `item_id`).
SAME_ID = "$request.path.id"


def answer_field(name: str) -> str:
    return f"$response.body#/{name}"


def operation_id(method: str, path: str) -> str:
    """An operation's id in the document: `post__user_collection_update_id` for POST
    /user/collection/update/{id}."""
    return f"{method.lower()}_{path}".replace("/", "_").replace("{", "").replace("}", "")


def _operation(route: Route, method: str, op: Operation, refs: SchemaRefs) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if op.response is not None:
        schema: dict[str, Any] = _schema_ref(refs, op.response, ANSWER)
        if op.response_or_null:
            schema = {"anyOf": [schema, {"type": "null"}]}
        responses[str(op.response_status)] = {"description": op.summary,
                                              "content": {"application/json": {"schema": schema}}}
    for status, answer in sorted(op.raw_responses.items()):
        responses[str(status)] = answer
    tagged = op.answers_etag(method)
    if tagged:
        for answered in ("200", "201"):
            if answered in responses:
                responses[answered] = {**responses[answered], "headers": {**responses[answered].get("headers", {}),
                                                                          **ETAG_HEADER}}
        responses.setdefault("304", NOT_MODIFIED)
    if op.if_match:
        responses.setdefault("412", _message_example(412, conditional.PRECONDITION_FAILED))
    for status, message in sorted(op.responses.items()):
        responses.setdefault(str(status), _message_example(status, message))
    if op.auth:
        responses.setdefault("401", _message_example(401, UNAUTHORIZED))
    for status, message in _common_answers(route, method, op):
        responses.setdefault(str(status), _message_example(status, message))
    for challenged, header in (("401", WWW_AUTHENTICATE_HEADER), ("429", RETRY_AFTER_HEADER)):
        if challenged in responses:
            answer = responses[challenged]
            responses[challenged] = {**answer, "headers": {**answer.get("headers", {}), **header}}
    if not any(status.startswith("2") for status in responses):
        responses["200"] = {"description": op.summary}
    succeeded = next((status for status in ("200", "201") if status in responses), None)
    if succeeded is not None and (op.cache_control or op.sets_cookie or op.links):
        answer = dict(responses[succeeded])
        headers = dict(answer.get("headers", {}))
        if op.cache_control:
            headers["Cache-Control"] = {"description": op.cache_control, "schema": {"type": "string"}}
        if op.sets_cookie:
            headers["Set-Cookie"] = {"description": op.sets_cookie, "schema": {"type": "string"}}
        if headers:
            answer["headers"] = headers
        if op.links:
            answer["links"] = {name: {"operationId": operation_id(*target.split(" ", 1)),
                                      "parameters": {"id": expression}}
                               for name, (target, expression) in op.links.items()}
        responses[succeeded] = answer
    document: dict[str, Any] = {
        "summary": op.summary,
        "operationId": operation_id(method, route.path),
        "responses": responses,
    }
    if op.tags:
        document["tags"] = list(op.tags)
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True,
         "schema": route.path_parameters[name].schema if name in route.path_parameters else {"type": "string"}}
        for name in route.parameters
    ]
    if op.query is not None:
        parameters += _query_parameters(op.query)
    if idempotency.is_idempotent(getattr(route.handler, method, None)):
        parameters.append(IDEMPOTENCY_PARAMETER)
    if tagged:
        parameters.append(IF_NONE_MATCH_PARAMETER)
    if op.if_match:
        parameters.append(IF_MATCH_PARAMETER)
    if parameters:
        document["parameters"] = parameters
    if op.request is not None:
        document["requestBody"] = {
            "required": op.request_required,
            "content": {"application/json": {"schema": _schema_ref(refs, op.request, REQUEST)}},
        }
    elif op.raw_request:
        document["requestBody"] = {"required": True, "content": op.raw_request}
    if op.auth:
        # Any one: the cookie, the access token as `Authorization: Bearer`, or, where the route
        # takes one, a personal token with its scope.
        document["security"] = [{"refreshToken": []}, {"accessToken": []}]
        if op.scope is not None:
            document["security"].append({"personalToken": [op.scope]})
    described = [op.description or ""]
    if op.permission:
        described.append(f"Requires the permission `{op.permission}`.")
    if op.auth:
        described.append(f"A personal token needs the scope `{op.scope}` (or a wider one)." if op.scope else
                         "A personal token is refused (403).")
    if same_origin.requires_same_origin(getattr(route.handler, method, None)):
        described.append(SAME_ORIGIN_ONLY)
    if any(described):
        document["description"] = "\n\n".join(part for part in described if part)
    return document


# Said of every operation declared `@same_origin_only` (web.same_origin).
SAME_ORIGIN_ONLY = (f"Changes nothing, and answers 403 `\"{CROSS_SITE_REFUSED}\"`, unless the request proves that a "
                    "trusted page sent it: an `Origin` header that is the service's own origin or one of the allowed "
                    "web origins (`CORS_ORIGINS`), as `fetch()` from the web client sends, or, without `Origin`, "
                    "`Sec-Fetch-Site: same-origin`. A link, a form or an image on another page never proves it. "
                    "A client that is not a browser (it holds no visitor's cookie) may send "
                    "`Sec-Fetch-Site: same-origin` itself.")


def _models(routes: list[Route]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    """Every model of the document, each with its role (REQUEST or ANSWER), once."""
    found: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(Message, ANSWER): None}
    for route in routes:
        for op in route.handler.api.values():
            if op.request is not None:
                found[(op.request, REQUEST)] = None
            if op.response is not None:
                found[(op.response, ANSWER)] = None
    return list(found)


_PYDANTIC_LIMITS = {"gt": "exclusiveMinimum", "ge": "minimum", "lt": "exclusiveMaximum", "le": "maximum"}


def _json_schema_limits(node: Any) -> Any:
    """pydantic leaves a constraint it could not place (on a type with a validator function) under
    its own name (`gt`, `le`), which JSON Schema ignores: renamed to JSON Schema's keywords."""
    if isinstance(node, dict):
        return {_PYDANTIC_LIMITS.get(key, key) if not isinstance(value, (dict, list)) else key:
                _json_schema_limits(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_json_schema_limits(item) for item in node]
    return node


_ROLE_SUFFIXES = {"-Input": "", "-Output": "Answer"}


def _named_by_role(node: Any) -> Any:
    """pydantic's `X-Input` and `X-Output` as `X` and `XAnswer`, in names, `$ref`s and titles."""
    if isinstance(node, dict):
        renamed = {}
        for key, value in node.items():
            name = key
            for suffix, replacement in _ROLE_SUFFIXES.items():
                if isinstance(key, str) and key.endswith(suffix):
                    name = key.removesuffix(suffix) + replacement
                    if isinstance(value, dict) and "title" in value:
                        value = {**value, "title": name}
                if key == "$ref" and isinstance(value, str) and value.endswith(suffix):
                    value = value.removesuffix(suffix) + replacement
            renamed[name] = _named_by_role(value)
        return renamed
    if isinstance(node, list):
        return [_named_by_role(item) for item in node]
    return node


def openapi_document(routes: list[Route]) -> dict[str, Any]:
    found, definitions = models_json_schema(
        _models(routes), ref_template="#/components/schemas/{model}", by_alias=True)
    refs = {role: _named_by_role(ref) for role, ref in found.items()}
    named = definitions.get("$defs", {})
    assert not any(name.endswith("-Output") and name.removesuffix("-Output") + "Answer" in named for name in named), \
        "a model is named like another's answer"
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        for method, op in route.handler.api.items():
            paths.setdefault(route.path, {})[method] = _with_examples(_operation(route, method, op, refs), route, method)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tsundoku API",
            "version": "1.0.0",
            "description": "Reading lists, ratings, collections and profiles for readers of manga, "
                           "light novels and comics.",
        },
        "paths": paths,
        "components": {
            "schemas": _named_by_role(_json_schema_limits(definitions.get("$defs", {}))),
            "securitySchemes": {
                "refreshToken": {"type": "apiKey", "in": "cookie", "name": "refreshToken"},
                "accessToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                "description": "The accessToken of POST /auth/login, GET /auth/me and "
                                               "POST /auth/refresh, valid 15 minutes."},
                "personalToken": {"type": "http", "scheme": "bearer", "bearerFormat": "tsu_pat_<user id>_<secret>",
                                  "description": "A personal access token made with POST /auth/tokens, as "
                                                 "`Authorization: Bearer`. Scopes: `read` (the user's own "
                                                 "data) and `write` (also their lists; implies `read`)."},
            },
        },
    }
