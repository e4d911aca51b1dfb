"""Query parameters in the OpenAPI document hold only what a query string can carry (issue 33,
point 2): the models a list route shares between its query and its POST form's body also take
`{"key": value}` in the body, which a generated client would otherwise send as `?order[key]=...`."""

from __future__ import annotations

from typing import Any

from handlers.application import all_routes
from web.openapi import openapi_document


def _holds_an_object(schema: Any) -> bool:
    if isinstance(schema, dict):
        return schema.get("type") == "object" or "properties" in schema or any(
            _holds_an_object(value) for value in schema.values())
    if isinstance(schema, list):
        return any(_holds_an_object(value) for value in schema)
    return False


def query_parameters() -> list[tuple[str, str, dict[str, Any]]]:
    document = openapi_document(all_routes())
    return [(f"{method.upper()} {path}", parameter["name"], parameter["schema"])
            for path, operations in document["paths"].items() for method, operation in operations.items()
            for parameter in operation.get("parameters", []) if parameter["in"] == "query"]


def test_no_query_parameter_is_described_as_an_object() -> None:
    parameters = query_parameters()
    assert len(parameters) > 20
    assert [(route, name) for route, name, schema in parameters if _holds_an_object(schema)] == []


def test_an_order_is_a_plain_string_of_its_values() -> None:
    orders = {route: schema for route, name, schema in query_parameters() if name == "order"}
    assert orders["GET /user/collection"] == {"default": "name-asc", "enum": ["name-asc", "name-desc"],
                                              "type": "string"}
    assert all(schema["type"] == "string" and "enum" in schema for schema in orders.values()), orders
