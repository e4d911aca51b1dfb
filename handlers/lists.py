"""The base of the list routes (the reading history, the collection): GET with query parameters,
or the same parameters as a JSON body with POST (what the published web client sends). One model
validates both; a route writes only `answer`."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel

from auth.personal_tokens import READ
from web.base import ApiHandler
from web.openapi import Operation


def list_operations(query: type[BaseModel], summary: str, page: type[BaseModel], responses: dict[int, str],
                    tags: tuple[str, ...], *, body_required: bool) -> dict[str, Operation]:
    """The OpenAPI description of a list route's two verbs."""
    return {
        "get": Operation(scope=READ, summary=summary, query=query, response=page, tags=tags, responses=responses),
        "post": Operation(scope=READ, summary=f"{summary} (parameters as a JSON body)", request=query,
                          request_required=body_required, response=page, tags=tags, responses=responses),
    }


class ListHandler(ApiHandler):
    query_model: ClassVar[type[BaseModel]]

    async def get(self) -> None:
        await self.answer(await self.list_parameters(self.query_model))

    async def post(self) -> None:
        await self.answer(await self.list_parameters(self.query_model))

    async def answer(self, query: Any) -> None:
        raise NotImplementedError
