"""What a verb needs read together with the session, declared on the verb itself.

Authentication is one query; a verb that needs its own list entry, a whole list or the catalog
document its path names declares it with `@reads(...)`, and the same query brings it (a round
trip saved on every such request). The verb then finds it in `self.brought`; the authenticated
user carries nothing else. A verb that takes from `self.brought` what it did not declare gets
an `UndeclaredRead` (a 500, and a failing test), never an empty answer.

    class AddStatusHandler(ReadingStatusHandler):
        @reads(CatalogDocument("series"))
        async def post(self, id: str) -> None:
            series = self.brought.catalog_document(SeriesRecord, SERIES_NOT_FOUND)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from storage.collection import CollectionStats
from storage.profile_figures import EntryCounts
from storage.reading_stats import OwnFigures
from storage.records import CollectionItemRecord, RatingRecord, SeriesRecord, StatusRecord, StoredList, VolumeRecord
from storage.session_reads import Figures, FiguresRead
from web.errors import ApiError


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
    """Figures the database computes from the user's document in the session query, so that
    the list they are computed from never travels. `request` names them (a storage read) for
    the request's raw query arguments, or gives None when they are invalid (the verb then
    answers 400)."""

    request: Callable[[Mapping[str, str]], FiguresRead | None]


@dataclass(frozen=True)
class CatalogDocument:
    """The document of `collection` (`series` or `volumes`) the path's `id` names."""

    collection: str


Read = OwnEntry | WholeList | Computed | CatalogDocument
Verb = TypeVar("Verb", bound=Callable[..., Any])
F = TypeVar("F", CollectionStats, OwnFigures, EntryCounts)
E = TypeVar("E", StatusRecord, RatingRecord, CollectionItemRecord)
C = TypeVar("C", SeriesRecord, VolumeRecord)


class UndeclaredRead(RuntimeError):
    """A verb took from `self.brought` what it did not declare with `@reads`: a bug."""


def reads(read: Read) -> Callable[[Verb], Verb]:
    """Declares `read` on a verb. It wraps rather than marks the function, so that a shared verb
    (a base class's `get`) can be declared differently by each route that takes it over."""
    def declare(verb: Verb) -> Verb:
        @functools.wraps(verb)
        async def declared(*args: Any, **kwargs: Any) -> Any:
            return await verb(*args, **kwargs)

        # A mark on the wrapper, read back by declared_read: a function's type has no such attribute.
        declared.reads = read  # type: ignore[attr-defined]
        return cast(Verb, declared)  # it takes and answers what the verb does (functools.wraps)
    return declare


def declared_read(verb: Callable[..., Any] | None) -> Read | None:
    return getattr(verb, "reads", None)


@dataclass(frozen=True)
class Brought:
    """What the session query brought for the verb, besides the user: only what `declared`
    (the verb's `@reads`) asked for."""

    declared: Read | None = None
    verb: str = "a verb without @reads"  # who declared it, for the error that says it did not
    # The list asked for (OwnEntry: zero or one entry; WholeList: all of them); None when the
    # user has none stored, or the path's id was malformed (the verb answers 400).
    entries: StoredList | None = None
    catalog: list[SeriesRecord | VolumeRecord] = field(default_factory=list)  # CatalogDocument: zero or one
    figures: Figures | None = None  # Computed: the figures as the database computed them

    def _require(self, kind: type[Read], wanted: str) -> Read:
        if not isinstance(self.declared, kind):
            raise UndeclaredRead(f"{self.verb} reads {wanted} but declares {self.declared!r}: "
                                 f"declare @reads({kind.__name__}(...)) on it")
        return self.declared

    def list(self) -> StoredList:
        """The WholeList asked for (empty if the user has none)."""
        declared = self._require(WholeList, "a whole list")
        assert isinstance(declared, WholeList)
        return self.entries or StoredList(declared.list_field, [])

    def own_entry(self, kind: type[E]) -> E | None:
        """The OwnEntry asked for, as a `kind` record, or None."""
        self._require(OwnEntry, "its own entry")
        entry = self.entries.first() if self.entries else None
        if entry is not None and not isinstance(entry, kind):
            raise UndeclaredRead(f"{self.verb} reads a {kind.__name__} but its OwnEntry brought {entry!r}")
        return entry

    def catalog_document(self, kind: type[C], not_found: str) -> C:
        """The catalog document asked for, as a `kind` record, or 404 with `not_found`."""
        self._require(CatalogDocument, "a catalog document")
        if not self.catalog:
            raise ApiError(404, not_found)
        document = self.catalog[0]
        if not isinstance(document, kind):
            raise UndeclaredRead(f"{self.verb} reads a {kind.__name__} but its CatalogDocument brought {document!r}")
        return document

    def figures_of(self, kind: type[F]) -> F:
        """The Computed figures asked for, as a `kind` record."""
        self._require(Computed, "computed figures")
        if not isinstance(self.figures, kind):
            raise UndeclaredRead(f"{self.verb} reads {kind.__name__} but its Computed brought {self.figures!r}")
        return self.figures
