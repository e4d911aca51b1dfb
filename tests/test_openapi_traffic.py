"""Every answer of a full tour of the API, and every request the service accepted in it, validated
against the served /openapi.json (JSON Schema 2020-12): the document describes the real traffic."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pymongo.asynchronous.database import AsyncDatabase

from tests import api_client
from tests.api_tour import CATALOG, api_tour
from tests.catalog_data import load_catalog
from tests.conftest import RunningApp
from web.openapi import EXAMPLES_FILE

pytestmark = pytest.mark.asyncio


def operation_of(document: dict[str, Any], method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    bare = path.split("?", 1)[0]
    for template, operations in document["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, bare) and method.lower() in operations:
            return template, operations[method.lower()]
    return None


def problems_of(document: dict[str, Any], schema: dict[str, Any], value: Any) -> list[str]:
    validator = Draft202012Validator({"components": document["components"], **schema})
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator.iter_errors(value)]


async def test_every_exchange_of_the_tour_matches_the_document(running: RunningApp, db: AsyncDatabase,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    await load_catalog(db, CATALOG)
    exchanges: list[tuple[str, str, Any, Any]] = []
    original = api_client.ApiClient.request

    async def recording(self: Any, method: str, path: str, **kwargs: Any) -> Any:
        reply = await original(self, method, path, **kwargs)
        exchanges.append((method, path, kwargs, reply))
        return reply

    monkeypatch.setattr(api_client.ApiClient, "request", recording)
    await api_tour(running, db)
    document = (await running.client().get("/openapi.json")).body
    if os.environ.get("RECORD_OPENAPI_EXAMPLES") == "1":
        record_examples(document, exchanges)
    failures: list[str] = []
    for method, path, sent, reply in exchanges:
        found = operation_of(document, method, path)
        if found is None:
            failures.append(f"{method} {path}: not in the document")
            continue
        template, operation = found
        where = f"{method} {template} -> {reply.status}"
        body = sent.get("json_body")
        if body is not None and 200 <= reply.status < 300:
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if content is None:
                failures.append(f"{where}: a JSON body was accepted but none is documented")
            else:
                failures += [f"{where} request {p}" for p in problems_of(document, content["schema"], body)]
        answer = operation["responses"].get(str(reply.status))
        if answer is None:
            failures.append(f"{where}: status not documented")
            continue
        media = (reply.headers.get("Content-Type") or "").split(";")[0].strip()
        content = answer.get("content", {})
        if not reply.raw:
            continue
        if media not in content:
            failures.append(f"{where}: {media} not documented ({list(content)})")
            continue
        if media == "application/json":
            failures += [f"{where} answer {p}" for p in
                         problems_of(document, content[media]["schema"], json.loads(reply.raw))]
    assert failures == [], "\n".join(failures)


def record_examples(document: dict[str, Any], exchanges: list[tuple[str, str, Any, Any]]) -> None:
    """The first successful exchange of each operation: its JSON body and its JSON answer."""
    examples: dict[str, dict[str, Any]] = {}
    for method, path, sent, reply in exchanges:
        found = operation_of(document, method, path)
        if found is None or not 200 <= reply.status < 300 or found[0] == "/openapi.json":
            continue
        example = examples.setdefault(f"{method} {found[0]}", {})
        if sent.get("json_body") is not None and "request" not in example:
            example["request"] = sent["json_body"]
        if reply.raw and (reply.headers.get("Content-Type") or "").startswith("application/json") \
                and "response" not in example:
            example["response"] = json.loads(reply.raw)
    examples = {key: example for key, example in examples.items() if example}
    EXAMPLES_FILE.write_text(json.dumps(examples, indent=1, ensure_ascii=False, sort_keys=True) + "\n",
                             encoding="utf-8")


async def test_the_documents_examples_are_real_and_valid(running: RunningApp) -> None:
    """Every operation with a JSON request body and every JSON success answer has an example
    (recorded from the tour's traffic), and each example is valid for its schema today."""
    document = (await running.client().get("/openapi.json")).body
    missing, invalid = [], []
    for template, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {template}"
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            success = operation["responses"].get("200") or operation["responses"].get("201") or {}
            answer = success.get("content", {}).get("application/json")
            for name, content in (("request", body), ("answer", answer)):
                if content is None or template == "/openapi.json":
                    continue
                if "example" not in content:
                    missing.append(f"{where} {name}")
                    continue
                invalid += [f"{where} {name} {p}" for p in problems_of(document, content["schema"], content["example"])]
    assert missing == [] and invalid == [], "\n".join(missing + invalid)


async def test_refused_requests_answer_as_documented(running: RunningApp, db: AsyncDatabase) -> None:
    """Every operation, asked wrongly: without a session, with an unknown body key, with a bad
    query value, about an id that does not exist. Each answer's status must be documented for
    the operation, and its body must match the documented schema."""
    await load_catalog(db, CATALOG)
    document = (await running.client().get("/openapi.json")).body
    alice = running.client()
    await alice.sign_up("alice")
    anyone = running.client()
    failures: list[str] = []
    checked = 0
    for template, operations in document["paths"].items():
        path = template.replace("{res}", "scaled").replace("{slug}", "nobody")
        path = re.sub(r"\{[^}]+\}", "999999", path)
        for method, operation in operations.items():
            bodied = "requestBody" in operation
            attempts: list[tuple[Any, str, dict[str, Any]]] = [
                (anyone, path, {"json_body": {}} if bodied else {}),
                (alice, path, {"json_body": {"$where": 1}} if bodied else {}),
            ]
            if any(p["in"] == "query" for p in operation.get("parameters", [])):
                name = next(p["name"] for p in operation["parameters"] if p["in"] == "query")
                attempts.append((alice, f"{path}?{name}=%00", {}))
            for client, url, kwargs in attempts:
                reply = await client.request(method.upper(), url, **kwargs)
                checked += 1
                where = f"{method.upper()} {template} -> {reply.status}"
                answer = operation["responses"].get(str(reply.status))
                if answer is None:
                    failures.append(f"{where}: status not documented ({sorted(operation['responses'])})")
                    continue
                media = (reply.headers.get("Content-Type") or "").split(";")[0].strip()
                if reply.raw and method != "head":
                    if media not in answer.get("content", {}):
                        failures.append(f"{where}: {media} not documented")
                    elif media == "application/json":
                        schema = answer["content"][media]["schema"]
                        failures += [f"{where} {p}" for p in problems_of(document, schema, json.loads(reply.raw))]
    assert checked > 90
    assert failures == [], "\n".join(failures)


STATUS_BODY = {"visibility": "public", "progress_type": "volumes", "progress": 3, "status": "started",
               "priority": "high", "client": 1}
# (route, bodies): each body is sent, and the request schema must accept it exactly when the
# service does: the forms the web client sends, and the values the service refuses.
FORMS: list[tuple[str, list[Any]]] = [
    ("/user/reading-status/update/1", [
        STATUS_BODY, {**STATUS_BODY, "status": {"key": "paused"}}, {**STATUS_BODY, "priority": {"key": "low"}},
        {**STATUS_BODY, "progressType": "chapters"},
        {**STATUS_BODY, "client": "1"}, {**STATUS_BODY, "client": " 1 "}, {**STATUS_BODY, "client": 1.0},
        {**STATUS_BODY, "progress": -5}, {**STATUS_BODY, "client": 0}, {**STATUS_BODY, "client": "0"},
        {**STATUS_BODY, "status": "reading"}, {**STATUS_BODY, "priority": {"key": "urgent"}},
        {**STATUS_BODY, "score": 11}, {**STATUS_BODY, "reread": -1}, {**STATUS_BODY, "extra": 1},
        {k: v for k, v in STATUS_BODY.items() if k != "progress_type"},
        {**STATUS_BODY, "start": "2024-05"}, {**STATUS_BODY, "start": "2024"}, {**STATUS_BODY, "start": "May 2024"},
        {**STATUS_BODY, "start": "2024-13"}, {**STATUS_BODY, "end": "2024-05-31"},
    ]),
    ("/users/{user}/save-settings", [
        {"theme": "dark"}, {}, {"settings": {}}, {"theme": {"key": "light"}}, {"theme": None},
        {"settings": {"theme": None}}, {"theme": "purple"}, {"show-drag-indicator": "yes"},
        {"collection-visibility": "public"}, {"settings": {"theme": "dark"}, "view-mode": "grid"},
    ]),
    ("/user/series-rating/update/1", [{"rating": 7.5}, {"rating": 1}, {"rating": 10}, {"rating": 7.3},
                                      {"rating": 11}, {"rating": 0.5}, {"rating": "7"}, {"rating": None}]),
    ("/user/collection/update/{item}", [{"price": 5, "date": None}, {"price": 19.99, "date": None},
                                        {"price": "5", "date": None},
                                        {"price": -1, "date": None}, {"price": 100001, "date": None},
                                        {"price": None, "date": "2024-02-30"}, {"price": None, "date": "2024-02-29"},
                                        {"price": None, "date": "2023-02-29"}, {"price": None, "date": "0000-01-01"},
                                        {"price": None, "date": ""}, {"price": None}]),
    ("/auth/tokens", [{"name": "app", "scopes": ["read"], "expires_in_days": 30},
                      {"name": "app", "scopes": ["read"], "expires_in_days": 30.0},
                      {"name": "app", "scopes": ["read"], "expires_in_days": "30"},
                      {"name": "app", "scopes": ["read"], "expires_in_days": 30.5}]),
    ("/user/reading-history", [{"client": 1, "limit": 5}, {"client": 1, "limit": 5.0}, {"client": 1, "limit": "5"},
                               {"client": 1, "limit": True}, {"client": 1, "order": {"key": "name-asc"}},
                               {"client": "1", "offset": 2}]),
]
# What the service takes beyond the document, as the operations' descriptions say: the spec's
# `progressType` (the original web client sends it) and settings wrapped as `{"settings": {...}}`.
# The document names one form of each, which every client generator can read.
BEYOND_THE_DOCUMENT: list[tuple[str, dict[str, Any]]] = [
    ("/user/reading-status/update/1", {k: v for k, v in {**STATUS_BODY, "progressType": "volumes"}.items()
                                       if k != "progress_type"}),
    ("/users/{user}/save-settings", {"settings": {"theme": "dark"}}),
]
# What the document takes and the service refuses, by a rule no schema can say (the operation's
# description says it): a price with more than two decimals.
REFUSED_BEYOND_THE_DOCUMENT: list[tuple[str, dict[str, Any]]] = [
    ("/user/collection/update/{item}", {"price": 19.999, "date": None}),
]


async def test_request_schemas_accept_exactly_what_the_service_accepts(running: RunningApp, db: AsyncDatabase) -> None:
    await load_catalog(db, CATALOG)
    document = (await running.client().get("/openapi.json")).body
    alice = running.client()
    user = await alice.sign_up("alice")
    assert (await alice.post("/user/reading-status/add/1", STATUS_BODY)).status == 200
    assert (await alice.post("/user/series-rating/add/1", {"rating": 5})).status == 200
    item = (await alice.post("/user/collection/add/11")).body["item_id"]
    disagreements = []
    for route, bodies in FORMS:
        path = route.replace("{user}", user["id"]).replace("{item}", item)
        found = operation_of(document, "POST", path)
        assert found is not None, route
        schema = found[1]["requestBody"]["content"]["application/json"]["schema"]
        for body in bodies:
            reply = await alice.post(path, body)
            accepted = 200 <= reply.status < 300
            valid = not problems_of(document, schema, body)
            if accepted != valid:
                disagreements.append(f"{route} {json.dumps(body)}: service {reply.status}, schema "
                                     f"{'accepts' if valid else 'refuses'}")
    assert disagreements == [], "\n".join(disagreements)
    for route, body in BEYOND_THE_DOCUMENT:
        path = route.replace("{user}", user["id"])
        found = operation_of(document, "POST", path)
        assert found is not None, route
        schema = found[1]["requestBody"]["content"]["application/json"]["schema"]
        assert problems_of(document, schema, body) and (await alice.post(path, body)).status == 200, body
    for route, body in REFUSED_BEYOND_THE_DOCUMENT:
        path = route.replace("{item}", item)
        found = operation_of(document, "POST", path)
        assert found is not None, route
        schema = found[1]["requestBody"]["content"]["application/json"]["schema"]
        assert not problems_of(document, schema, body) and (await alice.post(path, body)).status == 400, body
