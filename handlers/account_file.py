"""The account file: download everything (`GET /user/export`), and bring such a file back
(`POST /user/import`, a dry run unless `mode=apply`). The format: handlers.schemas.account_file."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from auth.clock import iso_utc, utc_now
from auth.permissions import RATE_SERIES
from handlers.base import ApiHandler
from handlers.errors import BODY_TOO_LARGE, UNAUTHORIZED, ApiError, validate
from handlers.idempotency import idempotent
from handlers.json_input import JsonLimits, JsonRefused, parse_json, require_json_content_type
from handlers.json_positions import line_of
from handlers.openapi_docs import Operation, Route
from handlers.schemas.account_file import (
    EXPORT_FORMAT,
    EXPORT_VERSION,
    AccountFile,
    ImportQuery,
    ImportReport,
    ListReport,
)
from handlers.schemas.auth import avatar_url
from handlers.schemas.common import FieldError
from handlers.schemas.settings import NSFW_18, settings_with_defaults
from storage.account_export import AccountData
from storage.account_import import ImportOutcome, IncomingAccount
from storage.list_merge import MERGE_RULES
from storage.records import CollectionItemRecord, RatingRecord, StatusRecord

# A user's whole document is at most 16 MB of BSON; its JSON is about as large.
IMPORT_BODY_LIMIT = 16 * 1024 * 1024
# What a file of MAX_LIST_ENTRIES statuses, ratings and items holds (28, 8 and 16 values each,
# as json_input counts them), with room for the profile, settings and sessions: no more is
# parsed, whatever the 16 MB hold.
ACCOUNT_FILE_LIMITS = JsonLimits(max_values=1_100_000)
INVALID_FILE = "Invalid account file"
_TAGS = ("account",)
# Each list's entries are unique by this field, as in the account.
_UNIQUE_BY = {"reading_statuses": "series_id", "ratings": "series_id", "collection": "volume_id"}


def account_file(data: AccountData, exported: Any) -> dict[str, Any]:
    """The file, as JSON-ready values. Built from the stored records without validating them
    again: a value edited by hand in the database is exported as it is."""
    user = data.user
    stored_settings = {key: value for key, value in settings_with_defaults(user.settings).items()
                       if key in user.settings}
    avatar = None
    if user.avatar_version is not None and set(data.avatar) == {"high", "scaled"}:
        avatar = {"version": user.avatar_version, **{
            resolution: {"url": avatar_url(user.id, user.avatar_version, resolution),
                         "content_type": image.content_type, "bytes": image.length, "sha256": image.sha256}
            for resolution, image in data.avatar.items()}}
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported": exported,
        "profile": {"id": user.id, "username": user.username, "slug": user.slug, "registered": user.registered,
                    "age_verified": user.age_verified, "roles": list(user.roles)},
        "settings": stored_settings,
        "avatar": avatar,
        "reading_statuses": [vars(status) for status in data.statuses],
        "ratings": [vars(rating) for rating in data.ratings],
        "collection": [vars(item) for item in data.collection],
        "sessions": [{"id": s.id, "created": s.created, "last_seen": s.last_seen, "user_agent": s.user_agent,
                      "address": s.address} for s in data.sessions],
    }


class ExportHandler(ApiHandler):
    api = {"get": Operation(summary="Download everything the account holds, as a versioned JSON file",
                            response=AccountFile, tags=_TAGS, responses={401: UNAUTHORIZED})}

    async def get(self) -> None:
        user = self.require_user()
        data = await self.services.account_export.read(user.id, user.session_hash)
        if data is None:
            raise ApiError(401, UNAUTHORIZED)  # deleted since the session was read
        now = utc_now()
        filename = f"tsundoku-{user.record.username}-{now.date().isoformat()}.json"
        self.set_header("Content-Disposition", f'attachment; filename="{filename}"')
        # Indented, one value a line: the line numbers an import names are then useful. Off the
        # loop: 875 ms of json.dumps at 40,000 statuses.
        self.finish(await self.off_the_loop(export_text, data, now))


def export_text(data: AccountData, now: datetime) -> str:
    """The account file as its text. Pure, for a worker."""
    return json.dumps(account_file(data, now), indent=1, ensure_ascii=False, default=_file_value)


def _file_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_utc(value)
    raise TypeError(f"cannot write {type(value).__name__}")


def read_account_file(chunks: list[bytes], content_type: str) -> AccountFile:
    """The body as an account file, or a 400 naming the line of the first problem. Pure (no
    service state), so that a large file is read off the event loop."""
    require_json_content_type(content_type)
    body = b"".join(chunks)
    try:
        parsed = parse_json(body, ACCOUNT_FILE_LIMITS)
    except JsonRefused as refused:
        raise ApiError(refused.status, f"{INVALID_FILE}: {refused}") from None
    except UnicodeDecodeError:
        raise ApiError(400, f"{INVALID_FILE}: not UTF-8") from None
    except json.JSONDecodeError as error:
        raise ApiError(400, f"{INVALID_FILE} at line {error.lineno}: {error.msg}") from None
    except (ValueError, RecursionError) as error:
        raise ApiError(400, f"{INVALID_FILE}: {error}") from None
    try:
        file = AccountFile.model_validate(parsed)
    except ValidationError as error:
        first = error.errors(include_url=False, include_context=False, include_input=False)[0]
        location = tuple(step for step in first["loc"] if isinstance(step, (str, int)))
        raise _located(body, location, first["msg"]) from None
    for name, key in _UNIQUE_BY.items():
        seen: set[int] = set()
        for index, entry in enumerate(getattr(file, name)):
            value = getattr(entry, key)
            if value in seen:
                raise _located(body, (name, index, key), f"a second entry for {key} {value}")
            seen.add(value)
    return file


def _located(body: bytes, location: tuple[str | int, ...], message: str) -> ApiError:
    field = ".".join(str(step) for step in location) or "body"
    return ApiError(400, f"{INVALID_FILE} at line {line_of(body, location)}",
                    [FieldError(field=field, message=message)])


def incoming_account(file: AccountFile, may_rate: bool) -> IncomingAccount:
    return IncomingAccount(
        statuses=[StatusRecord(series_id=s.series_id, client=s.client, visibility=s.visibility,
                               progress_type=s.progress_type, progress=s.progress, status=s.status, reread=s.reread,
                               score=s.score, priority=s.priority, start=s.start, end=s.end, notes=s.notes,
                               last_update=s.last_update) for s in file.reading_statuses],
        ratings=[RatingRecord(series_id=r.series_id, rating=r.rating, last_update=r.last_update) for r in file.ratings],
        collection=[CollectionItemRecord(item_id=i.item_id, volume_id=i.volume_id, series_id=i.series_id,
                                         client=i.client, price_cents=i.price_cents, buy_date=i.buy_date,
                                         added=i.added) for i in file.collection],
        settings=file.settings.model_dump(by_alias=True, exclude_unset=True),
        may_rate=may_rate,
        refused_setting=lambda key, value, age_verified: value == NSFW_18 and not age_verified,
    )


def read_incoming_account(chunks: list[bytes], content_type: str, may_rate: bool) -> IncomingAccount:
    """The body as what the import merges: in a worker, as a whole, since every step is linear
    in the file (building 60,000 records on the event loop took tens of milliseconds)."""
    return incoming_account(read_account_file(chunks, content_type), may_rate)


def report(outcome: ImportOutcome, query: ImportQuery) -> ImportReport:
    def of(list_outcome: Any) -> ListReport:
        return ListReport.model_validate(list_outcome, from_attributes=True)

    return ImportReport(mode=query.mode, merge=query.merge, applied=query.mode == "apply",
                        reading_statuses=of(outcome.statuses), ratings=of(outcome.ratings),
                        collection=of(outcome.collection), settings=of(outcome.settings))


class ImportHandler(ApiHandler):
    api = {"post": Operation(
        summary="Bring an account file into this account: a report of what it would do (mode=dry-run, the "
                "default), or does, all or nothing (mode=apply); merge=keep leaves differing entries as they are, "
                "merge=replace takes the file's",
        request=AccountFile, query=ImportQuery, response=ImportReport, tags=_TAGS,
        responses={400: INVALID_FILE, 401: UNAUTHORIZED, 413: BODY_TOO_LARGE})}

    def body_limit(self) -> int:
        return IMPORT_BODY_LIMIT

    @idempotent
    async def post(self) -> None:
        user = self.require_user()
        query = validate(ImportQuery, self.query_arguments())
        incoming = await self.off_the_loop(read_incoming_account, self.body_chunks(),
                                           self.request.headers.get("Content-Type", ""), user.can(RATE_SERIES))
        outcome = await self.services.account_import.run(
            user.id, incoming, rule=MERGE_RULES[query.merge], apply=query.mode == "apply")
        if outcome is None:
            raise ApiError(401, UNAUTHORIZED)
        self.write_model(report(outcome, query))


routes = [
    Route("/user/export", ExportHandler),
    Route("/user/import", ImportHandler),
]
