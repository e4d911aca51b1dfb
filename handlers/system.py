"""Service routes: health and the OpenAPI document."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel

from handlers.base import ApiHandler
from handlers.errors import SERVICE_UNAVAILABLE, ApiError
from handlers.openapi_docs import Operation, Route
from storage.database import ping


class Health(BaseModel):
    status: str


class HealthHandler(ApiHandler):
    requires_auth = False
    api = {
        "get": Operation(summary="200 when the database answers", response=Health, auth=False,
                         tags=("service",), responses={503: SERVICE_UNAVAILABLE})
    }

    async def get(self) -> None:
        if not await ping(self.services.db):
            raise ApiError(503, SERVICE_UNAVAILABLE)
        self.write_json({"status": "ok"})


class OpenApiHandler(ApiHandler):
    requires_auth = False
    api = {"get": Operation(summary="This document", auth=False, tags=("service",))}
    document: ClassVar[dict[str, Any] | None] = None

    def initialize(self, services: Any, document: dict[str, Any]) -> None:  # type: ignore[override]
        super().initialize(services)
        self.document = document

    def get(self) -> None:
        self.set_header("Cache-Control", "public, max-age=300")
        self.write_json(self.document)


routes = [Route("/health", HealthHandler), Route("/openapi.json", OpenApiHandler)]
