"""What a verb needs read together with the session, declared on the verb itself.

Authentication is one query; a verb that needs its own list entry, a whole list or the catalog
document its path names declares it with `@reads(...)`, and the same query brings it (a round
trip saved on every such request). The verb then finds it in `self.brought`; the authenticated
user carries nothing else.

    class AddStatusHandler(ReadingStatusHandler):
        @reads(CatalogDocument("series"))
        async def post(self, id: str) -> None:
            series = self.brought.catalog_document(SERIES_NOT_FOUND)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from handlers.errors import ApiError
from storage.records import StoredList


@dataclass(frozen=True)
class OwnEntry:
    """The user's entry of `list_field` for the series the path's `id` names."""

    list_field: str


@dataclass(frozen=True)
class WholeList:
    """Every entry of the user's `list_field`."""

    list_field: str


@dataclass(frozen=True)
class Computed:
    """A figure the database computes from the user's document in the session query, so that
    the list it is computed from never travels. `expression` gives it for the request's raw
    query arguments, or None when they are invalid (the verb then answers 400)."""

    name: str
    expression: Callable[[Mapping[str, str]], dict[str, Any] | None]


@dataclass(frozen=True)
class CatalogDocument:
    """The document of `collection` (`series` or `volumes`) the path's `id` names."""

    collection: str


Read = OwnEntry | WholeList | Computed | CatalogDocument
Verb = TypeVar("Verb", bound=Callable[..., Any])


def reads(read: Read) -> Callable[[Verb], Verb]:
    """Declares `read` on a verb. It wraps rather than marks the function, so that a shared verb
    (a base class's `get`) can be declared differently by each route that takes it over."""
    def declare(verb: Verb) -> Verb:
        @functools.wraps(verb)
        async def declared(*args: Any, **kwargs: Any) -> Any:
            return await verb(*args, **kwargs)

        declared.reads = read  # type: ignore[attr-defined]
        return declared  # type: ignore[return-value]
    return declare


def declared_read(verb: Callable[..., Any] | None) -> Read | None:
    return getattr(verb, "reads", None)


@dataclass(frozen=True)
class Brought:
    """What the session query brought for the verb, besides the user."""

    # The list the verb asked for (OwnEntry: zero or one entry; WholeList: all of them), as a
    # storage.records.StoredList; None when no list was read.
    entries: StoredList | None = None
    catalog: list[Any] = field(default_factory=list)  # CatalogDocument: zero or one record
    computed: Any = None  # Computed: the figure as the database computed it

    def list(self) -> StoredList:
        """The WholeList asked for (empty if the user has none)."""
        return self.entries or StoredList("", [])

    @property
    def own_entry(self) -> Any | None:
        """The record of the OwnEntry asked for, or None."""
        return self.entries.first() if self.entries else None

    def catalog_document(self, not_found: str) -> Any:
        """The catalog document's record, or 404 with `not_found`."""
        if not self.catalog:
            raise ApiError(404, not_found)
        return self.catalog[0]
