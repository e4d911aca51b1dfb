"""Every request model bounds what it takes: walked from the route table, so a new model is held
to the same rule (docs/architecture.md, "Bounded work")."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from formats.json_reading import MAX_OBJECT_KEYS
from handlers.application import all_routes


def request_models() -> list[type[BaseModel]]:
    models = {operation.request for route in all_routes() for operation in route.handler.api.values()}
    models |= {operation.query for route in all_routes() for operation in route.handler.api.values()}
    return sorted((m for m in models if m is not None), key=lambda m: m.__name__)


def arrays_without_a_bound(schema: Any, path: str = "") -> list[str]:
    found = []
    if isinstance(schema, dict):
        if schema.get("type") == "array" and "maxItems" not in schema:
            found.append(path or "/")
        for key, value in schema.items():
            found += arrays_without_a_bound(value, f"{path}/{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            found += arrays_without_a_bound(value, f"{path}/{index}")
    return found


@pytest.mark.parametrize("model", request_models(), ids=lambda m: m.__name__)
def test_every_list_a_request_model_takes_has_a_maximum_length(model: type[BaseModel]) -> None:
    assert arrays_without_a_bound(model.model_json_schema(by_alias=True)) == []


@pytest.mark.parametrize("model", request_models(), ids=lambda m: m.__name__)
def test_no_request_model_has_more_fields_than_an_object_may_have_keys(model: type[BaseModel]) -> None:
    schema = model.model_json_schema(by_alias=True)
    for definition in [schema, *schema.get("$defs", {}).values()]:
        assert len(definition.get("properties", {})) <= MAX_OBJECT_KEYS
