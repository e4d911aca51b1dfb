"""MyAnimeList lists: bring one in (`POST /user/import/mal`, a dry run unless `mode=apply`),
take an applied import back (`POST /user/import/{id}/undo`), and write the reading list as a
MAL file (`GET /user/export/mal`). The file format: formats.mal_xml; what its entries mean:
formats.mal_entries; the merge: storage.list_merge, shared with the account file's import."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from auth.clock import utc_now
from auth.personal_tokens import READ, WRITE
from formats.mal_entries import FileEntry, mal_entry, read_entry
from formats.mal_xml import (
    BYTES_TYPE,
    FILE_TOO_LARGE,
    INFLATED_TOO_LARGE,
    INVALID_FILE,
    MAX_COMPRESSED_BYTES,
    MAX_ENTRIES,
    MAX_XML_BYTES,
    NOT_A_MAL_FILE,
    MalListInfo,
    compressed_upload,
    gzipped,
    read_mal_file,
    write_mal_file,
)
from formats.problems import FileProblem
from handlers.schemas.mal_import import (
    MalEntryReport,
    MalExportQuery,
    MalImportCounts,
    MalImportQuery,
    MalImportReport,
    MalMatch,
    UndoLeft,
    UndoReport,
)
from languages import FALLBACK, localized
from storage.list_merge import MERGE_RULES, EntryChange
from storage.records import StoredList
from storage.status_import import CatalogMatches, IncomingStatus, ListBusy, SeriesNames, StatusImportResult
from storage.title_keys import title_key
from web.base import ApiHandler
from web.errors import (
    BODY_TOO_LARGE,
    MISSING_PARAMETERS,
    UNAUTHORIZED,
    USER_DOCUMENT_FULL,
    ApiError,
    file_refusal,
)
from web.idempotency import idempotent
from web.openapi import Answers, Operation, PathParameter, Route
from web.reads import WholeList, reads

IMPORT_NOT_FOUND = "Import not found"
CHANGED_SINCE = "changed since the import"
# Only with writes from other processes: this process's wait for the import (storage.list_gate).
LIST_BUSY = "The reading list kept changing meanwhile: nothing was changed, try again"
SOURCE = "myanimelist"
_TAGS = ("account",)
# Any other text names no import and is not worth a query.
_IMPORT_ID = PathParameter({"type": "string", "pattern": "^[0-9a-f]{24}$"}, (404, IMPORT_NOT_FOUND))
_FILE = {"schema": {"type": "string", "format": "binary"}}
# The file's own limits, each named in its message; the body's length is refused before the file is read.
_TOO_LARGE = Answers(f"{FILE_TOO_LARGE}: past {MAX_COMPRESSED_BYTES >> 20} MB compressed, {MAX_XML_BYTES >> 20} MB "
                     f"of XML, {MAX_ENTRIES} entries or another of the file's limits (the message says which); "
                     f"or {BODY_TOO_LARGE}, from the body's length alone", INFLATED_TOO_LARGE)



@dataclass(frozen=True)
class Resolved:
    entry: FileEntry
    key: str  # the title's match key
    series: tuple[int, int] | None = None  # (series id, client)
    by: Literal["id", "title"] | None = None
    reason: str | None = None  # why the entry is skipped


def read_upload(body: list[bytes], content_type: str) -> list[tuple[FileEntry, str]]:
    """Each entry and its title's match key (none for an entry that is skipped anyway)."""
    return [(entry, title_key(entry.title) if entry.problem is None else "")
            for entry in map(read_entry, read_mal_file(body, content_type))]


def resolve(entries: list[tuple[FileEntry, str]], found: CatalogMatches) -> list[Resolved]:
    """Each entry's series: by MAL id, else by title when exactly one series has it; a series
    a second entry also names is taken by the first."""
    resolved: list[Resolved] = []
    taken: dict[int, int] = {}  # series id -> the line that took it
    by: Literal["id", "title"] | None
    for entry, key in entries:
        if entry.problem is not None:
            resolved.append(Resolved(entry, key, reason=entry.problem))
            continue
        series, by = (found.by_external_id.get(entry.mal_id), "id") if entry.mal_id else (None, None)
        if series is None:
            candidates = found.by_title_key.get(key, []) if key else []
            if len(candidates) > 1:
                ids = ", ".join(str(series_id) for series_id, _ in sorted(candidates))
                resolved.append(Resolved(entry, key, reason=f"the title matches more than one series: {ids}"))
                continue
            if not candidates:
                unknown_id = f"MAL id {entry.mal_id} or " if entry.mal_id else ""
                resolved.append(Resolved(entry, key, reason=f"no series in the catalog has {unknown_id}this title"))
                continue
            series, by = candidates[0], "title"
        if series[0] in taken:
            resolved.append(Resolved(entry, key, series, by, f"series {series[0]} is already matched by the entry "
                                                             f"at line {taken[series[0]]}"))
            continue
        taken[series[0]] = entry.line
        resolved.append(Resolved(entry, key, series, by))
    return resolved


def import_report(resolved: list[Resolved], result: StatusImportResult, query: MalImportQuery) -> MalImportReport:
    entries = [_entry_report(item, result.changes.get(item.series[0]) if item.series else None, query.merge)
               for item in resolved]
    counts = {action: sum(1 for entry in entries if entry.action == action)
              for action in ("add", "update", "unchanged", "skipped")}
    return MalImportReport(mode=query.mode, merge=query.merge, applied=query.mode == "apply",
                           import_id=result.import_id, counts=MalImportCounts(entries=len(entries), **counts),
                           entries=entries)


def _entry_report(item: Resolved, change: EntryChange | None, merge: str) -> MalEntryReport:
    match = MalMatch(by=item.by, series_id=item.series[0]) if item.series and item.by else None
    base: dict[str, Any] = {"line": item.entry.line, "title": item.entry.title, "mal_id": item.entry.mal_id, "match": match}
    if item.reason is not None or change is None:
        return MalEntryReport(**base, action="skipped", reason=item.reason)
    if change.action == "kept":
        if merge == "keep":
            return MalEntryReport(**base, action="skipped", reason="on your list with other values (merge=keep)")
        return MalEntryReport(**base, action="unchanged", reason="your list is ahead of the file (merge=greater)")
    return MalEntryReport(**base, action=change.action, changes=list(change.changed))


class MalImportHandler(ApiHandler):
    api = {"post": Operation(scope=WRITE,
        summary="Bring a MyAnimeList manga list (XML, plain or gzipped) into the reading list: a report per entry "
                "of what it would do (mode=dry-run, the default) or does, all or nothing (mode=apply, which "
                "returns an import_id for undo). merge=greater (default) keeps the furthest progress, keep leaves "
                "listed series alone, replace takes the file's",
        query=MalImportQuery, response=MalImportReport, tags=_TAGS,
        description="The file's bytes are the body. The document names one type, `application/octet-stream`, "
                    "which every client generator can send; the same bytes are taken as `application/xml`, "
                    "`text/xml`, `application/gzip` or `application/x-gzip` too. Plain or gzipped XML is told "
                    "apart by the first bytes, whatever the type says. A gzipped file is held to 10 MB, plain XML "
                    "to 50 MB; any other type is 415.",
        raw_request={BYTES_TYPE: _FILE},
        responses={400: INVALID_FILE, 401: UNAUTHORIZED, 409: LIST_BUSY, 413: _TOO_LARGE, 415: NOT_A_MAL_FILE,
                   507: USER_DOCUMENT_FULL})}

    def body_limit(self) -> int:
        # Known from the headers, before the body: a gzipped file is held to the compressed limit.
        return MAX_COMPRESSED_BYTES if compressed_upload(self.request.headers.get("Content-Type", "")) \
            else MAX_XML_BYTES

    @idempotent
    async def post(self) -> None:
        user = self.require_user()
        query = self.query_parameters(MalImportQuery)
        # The body as it arrived: read chunk by chunk in the worker, never joined on the loop.
        try:
            entries = await self.off_the_loop(read_upload, self.body_chunks(),
                                              self.request.headers.get("Content-Type", ""))
        except FileProblem as problem:
            raise file_refusal(problem) from None
        found = await self.services.series_matcher.candidates(
            (e.mal_id for e, _ in entries if e.mal_id and e.fields), (k for e, k in entries if k and e.fields),
            query.client)
        resolved = await self.off_the_loop(resolve, entries, found)
        now = utc_now()
        incoming = [IncomingStatus(item.series[0], item.series[1], item.entry.fields) for item in resolved
                    if item.series and item.reason is None and item.entry.fields]
        try:
            result = await self.services.status_import.run(user.id, incoming, MERGE_RULES[query.merge],
                                                           apply=query.mode == "apply", source=SOURCE, now=now)
        except ListBusy:
            raise ApiError(409, LIST_BUSY) from None
        if result is None:
            raise ApiError(401, UNAUTHORIZED)  # deleted since the session was read
        report = await self.off_the_loop(import_report, resolved, result, query)
        self.finish_json(await self.off_the_loop(report.model_dump_json))


class UndoImportHandler(ApiHandler):
    api = {"post": Operation(scope=WRITE,
        summary="Take an applied import back: entries it added are removed, entries it changed are restored "
                "exactly; an entry changed since is left and reported. Imports can be undone for 30 days",
        response=UndoReport, tags=_TAGS,
        responses={400: MISSING_PARAMETERS, 401: UNAUTHORIZED, 404: IMPORT_NOT_FOUND, 409: LIST_BUSY})}

    @idempotent
    async def post(self, id: str) -> None:
        user = self.require_user()
        import_id = self.path_parameter("id")
        # Another user's import is not found either: the query names only this user's.
        try:
            result = await self.services.status_import.undo(user.id, import_id, utc_now())
        except ListBusy:
            raise ApiError(409, LIST_BUSY) from None
        if result is None:
            raise ApiError(404, IMPORT_NOT_FOUND)
        self.write_model(UndoReport(import_id=import_id, restored=result.restored, removed=result.removed,
                                    left=[UndoLeft(series_id=series_id, reason=CHANGED_SINCE)
                                          for series_id in result.left]))


def export_entries(statuses: StoredList, names: Mapping[int, SeriesNames]
                   ) -> tuple[list[dict[str, str | int]], dict[str, int]]:
    """Each status as a MAL entry, with the count of each MAL status: linear in the list, so run
    off the loop."""
    entries = []
    totals: dict[str, int] = {}
    for status in statuses.statuses():
        series = names.get(status.series_id)
        title = localized(series.titles, FALLBACK, series.name) if series else None
        entry = mal_entry(status, title or f"Series {status.series_id}", series.mal_id if series else None)
        totals[str(entry["my_status"])] = totals.get(str(entry["my_status"]), 0) + 1
        entries.append(entry)
    return entries, totals


class MalExportHandler(ApiHandler):
    api = {"get": Operation(scope=READ,
        summary="The reading list as a MyAnimeList manga export (XML; gzip=1 for a gzipped file) that "
                "MAL-compatible importers read", query=MalExportQuery, tags=_TAGS,
        raw_responses={200: {"description": "The file", "content": {"application/xml": _FILE,
                                                                      "application/gzip": _FILE}}},
        responses={401: UNAUTHORIZED})}

    @reads(WholeList("statuses"))  # the list comes with the session query: no second read
    async def get(self) -> None:
        user = self.require_user()
        query = self.query_parameters(MalExportQuery)
        statuses = self.brought.list()
        names = await self.services.series_matcher.names(statuses.series_ids())
        entries, totals = await self.off_the_loop(export_entries, statuses, names)
        file = await self.off_the_loop(write_mal_file, MalListInfo(user.record.username, totals), entries)
        stem = f"tsundoku-{user.record.username}-mal-{utc_now().date().isoformat()}.xml"
        if query.gzip == "1":
            file = await self.off_the_loop(gzipped, file)
            self.set_header("Content-Type", "application/gzip")
            self.set_header("Content-Disposition", f'attachment; filename="{stem}.gz"')
        else:
            self.set_header("Content-Type", "application/xml; charset=UTF-8")
            self.set_header("Content-Disposition", f'attachment; filename="{stem}"')
        await self.finish_large(file)


routes = [
    Route("/user/import/mal", MalImportHandler),
    Route("/user/import/{id}/undo", UndoImportHandler, {"id": _IMPORT_ID}),
    Route("/user/export/mal", MalExportHandler),
]
