"""What the document says beyond the schemas (issue 33, point 5), from the route table: the links
from what a client makes to the operations it calls next, the sign-in's cookie, the public pages'
caching, the capped limits and what `max` counts."""

from __future__ import annotations

from typing import Any

from handlers.application import all_routes
from web.openapi import openapi_document

DOCUMENT: dict[str, Any] = openapi_document(all_routes())


def operation(method: str, path: str) -> dict[str, Any]:
    found: dict[str, Any] = DOCUMENT["paths"][path][method]
    return found


def test_every_link_names_an_operation_and_a_parameter_it_has() -> None:
    by_id = {op["operationId"]: op for ops in DOCUMENT["paths"].values() for op in ops.values()}
    links = [(name, link) for ops in DOCUMENT["paths"].values() for op in ops.values()
             for answer in op["responses"].values() for name, link in answer.get("links", {}).items()]
    assert len(links) == 9
    for name, link in links:
        target = by_id[link["operationId"]]
        names = {parameter["name"] for parameter in target.get("parameters", [])}
        assert set(link["parameters"]) <= names, (name, link)


def test_what_was_made_links_to_its_update_and_delete() -> None:
    added = operation("post", "/user/collection/add/{id}")["responses"]["200"]["links"]
    assert added["update"] == {"operationId": "post__user_collection_update_id",
                               "parameters": {"id": "$response.body#/item_id"}}
    assert added["delete"]["operationId"] == "delete__user_collection_delete_id"
    status_links = operation("post", "/user/reading-status/add/{id}")["responses"]["200"]["links"]
    assert status_links["update"]["parameters"] == {"id": "$request.path.id"}


def test_the_sign_in_documents_its_cookie_and_public_pages_their_caching() -> None:
    cookie = operation("post", "/auth/login")["responses"]["200"]["headers"]["Set-Cookie"]["description"]
    assert "refreshToken=" in cookie and "HttpOnly" in cookie
    for path in ("/users", "/users/{slug}", "/users/{slug}/reading-history", "/users/{slug}/collection"):
        public = operation("get", path)
        assert {"ETag", "Cache-Control"} <= set(public["responses"]["200"]["headers"]), path
        assert "304" in public["responses"]
        assert "If-None-Match" in {parameter["name"] for parameter in public["parameters"]}


def test_capped_limits_and_totals_say_so() -> None:
    limit = next(p for p in operation("get", "/user/reading-history")["parameters"] if p["name"] == "limit")
    assert "taken as 100" in limit["schema"]["description"]
    page = DOCUMENT["components"]["schemas"]["ReadingHistoryPage"]["properties"]
    assert "in all" in page["max"]["description"]
