"""Service routes: health and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from storage.database import ping, takes_writes
from web.base import ApiHandler
from web.errors import SERVICE_UNAVAILABLE, message_body
from web.openapi import Operation, PathParameter, Route
from web.services import Services


class DatabaseHealth(BaseModel):
    # "running", "not-serving" (it runs but failed its last write probe), "restarting" or "failed"
    # for the embedded database; "external" for MONGODB_URI.
    state: str
    restarts: int
    last_exit: str | None


class Health(BaseModel):
    status: str
    database: DatabaseHealth


class HealthHandler(ApiHandler):
    """200 when the database takes a write within a second (MONGODB_URI), or on the embedded
    database answers a ping within a second and its supervisor's last write probe succeeded (a panicked storage engine answers pings and fails every
    write); 503 otherwise, in the error shape, with the same `database` object, so that an operator
    sees whether the embedded database is not serving or restarting. The probe's outcome is read,
    not awaited: the answer takes at most the ping's second."""

    requires_auth = False
    needs_database = False
    api = {
        "get": Operation(summary="200 when the database answers within a second and takes writes", response=Health,
                         auth=False, tags=("service",), responses={503: SERVICE_UNAVAILABLE})
    }

    async def get(self) -> None:
        if self.services.supervisor is None:
            # A MongoDB of its own: a write within the second is the only proof it serves.
            answered = await takes_writes(self.services.db)
        else:
            answered = self.services.database_available and await ping(self.services.db)
        # Described after the ping, which may take up to a second: the embedded database can
        # have stopped meanwhile, and the supervisor's state now is what the caller must see.
        supervisor = self.services.supervisor
        database = (supervisor.describe() if supervisor is not None
                    else {"state": "external", "restarts": 0, "last_exit": None})
        if not answered or not self.services.database_available:
            self.write_json({**message_body(503, SERVICE_UNAVAILABLE), "database": database}, 503)
            return
        self.write_json({"status": "ok", "database": database})


class OpenApiHandler(ApiHandler):
    requires_auth = False
    needs_database = False
    api = {"get": Operation(summary="This document", auth=False, tags=("service",), raw_responses={
        200: {"description": "The OpenAPI 3.1 document", "content": {"application/json": {"schema": {"type": "object"}}}}})}
    document: dict[str, Any] | None = None

    # The base's arguments and the document (make_app passes every argument by name).
    def initialize(self, services: Services, route: str | None = None,
                   path_parameters: Mapping[str, PathParameter] | None = None,
                   document: dict[str, Any] | None = None) -> None:
        super().initialize(services, route, path_parameters)
        self.document = document

    def get(self) -> None:
        self.set_header("Cache-Control", "public, max-age=300")
        self.write_json(self.document)


routes = [Route("/health", HealthHandler), Route("/openapi.json", OpenApiHandler)]
