"""MyAnimeList import and undo: the query, the report and the undo's answer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from handlers.schemas.catalog import ClientId
from handlers.schemas.common import RequestModel

EntryAction = Literal["add", "update", "unchanged", "skipped"]


class MalImportQuery(RequestModel):
    mode: Literal["dry-run", "apply"] = "dry-run"
    merge: Literal["keep", "replace", "greater"] = "greater"
    client: ClientId | None = None  # only series of this client are matched


class MalMatch(BaseModel):
    by: Literal["id", "title"]  # by `manga_mangadb_id` (the series' mal_id), or by title
    series_id: int


class MalEntryReport(BaseModel):
    line: int  # of the entry's <manga> tag in the (uncompressed) file
    title: str
    mal_id: int | None  # as the file gives it; None for 0 or none
    match: MalMatch | None  # None: no series, or more than one (see reason)
    action: EntryAction
    changes: list[str] = Field(default_factory=list)  # for an update: the fields that change
    reason: str | None = None  # for a skipped entry: why


class MalImportCounts(BaseModel):
    entries: int
    add: int
    update: int
    unchanged: int
    skipped: int


class MalImportReport(BaseModel):
    mode: Literal["dry-run", "apply"]
    merge: Literal["keep", "replace", "greater"]
    applied: bool
    import_id: str | None  # of an applied import: what POST /user/import/{id}/undo takes
    counts: MalImportCounts
    entries: list[MalEntryReport]


class UndoLeft(BaseModel):
    series_id: int
    reason: str


class UndoReport(BaseModel):
    import_id: str
    restored: int  # entries the import changed, put back as they were
    removed: int  # entries the import added, taken off the list
    left: list[UndoLeft]  # entries changed since the import, left as they are


class MalExportQuery(RequestModel):
    gzip: Literal["0", "1"] = "0"
