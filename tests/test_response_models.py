"""Every answer of every route is exactly its published response model: validated by the model,
and dumped back by it to the same JSON (so no field the model lacks, none of another type)."""

from __future__ import annotations

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from handlers.application import all_routes
from tests.api_tour import CATALOG, api_tour
from tests.catalog_data import load_catalog
from tests.conftest import RunningApp

pytestmark = pytest.mark.asyncio


async def test_every_answer_of_the_api_tour_is_exactly_its_response_model(running: RunningApp, db: AsyncDatabase) -> None:
    await load_catalog(db, CATALOG)
    operations = {(method.upper(), route.path): operation for route in all_routes()
                  for method, operation in route.handler.api.items()}
    checked = 0
    for method, route, reply in await api_tour(running, db):
        operation = operations[(method, route)]
        if operation.response is None or reply.status != operation.response_status:
            continue
        if reply.body is None:
            assert operation.response_or_null, (method, route)
            continue
        model = operation.response.model_validate(reply.body)
        assert model.model_dump(mode="json", by_alias=True, exclude_unset=True) == reply.body, (method, route)
        checked += 1
    with_models = {key for key, operation in operations.items() if operation.response is not None}
    assert checked >= len(with_models), (checked, with_models)
