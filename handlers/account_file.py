"""The account file: download everything (`GET /user/export`), and bring such a file back
(`POST /user/import`, a dry run unless `mode=apply`). The format: formats.account_file."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from auth.clock import utc_now
from auth.permissions import RATE_SERIES
from auth.personal_tokens import READ
from formats.account_file import INVALID_FILE, AccountFile, export_text, read_incoming_account
from formats.problems import FileProblem
from handlers.schemas.account_import import ImportQuery, ImportReport, ListReport
from storage.account_import import ImportOutcome
from storage.list_merge import MERGE_RULES
from web.base import ApiHandler
from web.errors import BODY_TOO_LARGE, NOT_JSON, UNAUTHORIZED, USER_DOCUMENT_FULL, ApiError, file_refusal
from web.idempotency import idempotent
from web.json_input import require_json_content_type
from web.openapi import Answers, Operation, Route

# A user's whole document is at most 16 MB of BSON; its JSON is about as large.
IMPORT_BODY_LIMIT = 16 * 1024 * 1024
_TAGS = ("account",)
# The body past its length, or a file that holds more than an account file can (formats.json_reading
# counts its values before parsing it).
_TOO_LARGE = Answers(f"{BODY_TOO_LARGE} (more than {IMPORT_BODY_LIMIT >> 20} MB), or {INVALID_FILE}: more JSON "
                     "values, or keys in one object, than an account file holds", BODY_TOO_LARGE)


class ExportHandler(ApiHandler):
    api = {"get": Operation(scope=READ, summary="Download everything the account holds, as a versioned JSON file",
                            description="With a personal token `sessions` is empty: no token sees the sessions.",
                            response=AccountFile, tags=_TAGS, responses={401: UNAUTHORIZED})}

    async def get(self) -> None:
        user = self.require_user()
        data = await self.services.account_export.read(user.id, user.session_hash)
        if data is None:
            raise ApiError(401, UNAUTHORIZED)  # deleted since the session was read
        if user.personal_token is not None:
            # No personal token sees the sessions (GET /auth/sessions refuses them): an app need
            # not learn where and on what the person signs in. The format lets a file leave them out.
            data = replace(data, sessions=[])
        now = utc_now()
        filename = f"tsundoku-{user.record.username}-{now.date().isoformat()}.json"
        self.set_header("Content-Disposition", f'attachment; filename="{filename}"')
        # Indented, one value a line: the line numbers an import names are then useful. Off the
        # loop: 875 ms of json.dumps at 40,000 statuses.
        await self.finish_large(await self.off_the_loop(export_text, data, now))


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
        responses={400: INVALID_FILE, 401: UNAUTHORIZED, 413: _TOO_LARGE, 415: NOT_JSON, 507: USER_DOCUMENT_FULL})}

    def body_limit(self) -> int:
        return IMPORT_BODY_LIMIT

    @idempotent
    async def post(self) -> None:
        user = self.require_user()
        query = self.query_parameters(ImportQuery)
        chunks = self.body_chunks()
        require_json_content_type(self.request.headers.get("Content-Type", ""))
        try:
            incoming = await self.off_the_loop(read_incoming_account, chunks, user.can(RATE_SERIES))
        except FileProblem as problem:
            raise file_refusal(problem) from None
        outcome = await self.services.account_import.run(
            user.id, incoming, rule=MERGE_RULES[query.merge], apply=query.mode == "apply")
        if outcome is None:
            raise ApiError(401, UNAUTHORIZED)
        self.write_model(report(outcome, query))


routes = [
    Route("/user/export", ExportHandler),
    Route("/user/import", ImportHandler),
]
