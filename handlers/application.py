"""Builds the Tornado application: the route table and the services handlers depend on."""

from __future__ import annotations

import functools
import secrets
from datetime import timedelta
from typing import Any

from auth.access_tokens import AccessTokens
from auth.passwords import Passwords
from formats import mal_xml
from handlers import (
    account,
    account_file,
    accounts,
    avatars,
    catalog_detail,
    catalog_list,
    changes,
    collection,
    mal_import,
    metrics,
    personal_tokens,
    profile,
    public_profiles,
    ratings,
    reading,
    reading_stats,
    sessions,
    system,
    user_settings,
    webapp,
)
from settings import Settings
from storage.account_export import AccountExport
from storage.account_import import AccountImport
from storage.account_removal import AccountRemoval
from storage.avatars import AvatarStore
from storage.catalog_keys import CatalogKeys
from storage.catalog_pages import CatalogPages
from storage.changes import ChangeFeed
from storage.collection import CollectionStore
from storage.database import Database
from storage.idempotency import IdempotencyStore
from storage.list_gate import ListGate
from storage.public_profiles import PublicProfiles
from storage.rate_limits import LOGIN, LOGIN_ADDRESS, SharedWindowLimit
from storage.ratings import RatingStore
from storage.reading import ReadingStatusStore
from storage.series_browse import SeriesBrowse
from storage.status_import import SeriesMatcher, StatusImport
from storage.supervisor import EmbeddedSupervisor
from storage.user_directory import UserDirectory
from storage.users import UserStore
from web.access_log import record_request
from web.base import DEFAULT_BODY_LIMIT, ApiHandler, NotFoundHandler
from web.http_server import TsundokuApplication
from web.openapi import Route, openapi_document
from web.services import Services, input_pool


def all_routes() -> list[Route]:
    return [*accounts.routes, *sessions.routes, *personal_tokens.routes, *profile.routes, *user_settings.routes,
            *reading.routes, *reading_stats.routes, *ratings.routes, *collection.routes, *avatars.routes, *account.routes,
            *public_profiles.routes, *account_file.routes, *mal_import.routes, *catalog_list.routes,
            *catalog_detail.routes, *changes.routes, *system.routes]


def largest_body_limit(settings: Settings) -> int:
    """The largest body any route accepts: the server's limit (each route applies its own)."""
    return max(DEFAULT_BODY_LIMIT, avatars.upload_body_limit(settings), account_file.IMPORT_BODY_LIMIT,
               mal_xml.MAX_XML_BYTES)


@functools.cache
def published_document() -> dict[str, Any]:
    """The OpenAPI document. It follows from the route table alone, so every app of a process
    serves the same one; built once, since building it takes 0.1-0.3 s (and the tests start an
    app for each test). Read only: the handler serializes it."""
    return openapi_document(all_routes())


def make_app(settings: Settings, db: Database, *, passwords: Passwords | None = None,
             supervisor: EmbeddedSupervisor | None = None, fingerprint_secret: bytes | None = None,
             access_token_keys: list[bytes] | None = None) -> TsundokuApplication:
    """`fingerprint_secret` and `access_token_keys`: what server.py reads (IDEMPOTENCY_SECRET,
    ACCESS_TOKEN_SECRET, or their files); random ones otherwise, for an app that lives as long as
    its process (tests)."""
    catalog_keys = CatalogKeys(db)
    change_feed = ChangeFeed(db, timedelta(days=settings.changes_retention_days), settings.status_history_limit)
    users = UserStore(db, change_feed)
    avatars = AvatarStore(db, users)
    inputs = input_pool()
    # The reading list's writes take turns with its imports and undos (storage.list_gate).
    statuses_gate = ListGate()
    services = Services(
        supervisor=supervisor,
        settings=settings,
        db=db,
        users=users,
        catalog_keys=catalog_keys,
        statuses=ReadingStatusStore(db, catalog_keys, statuses_gate, change_feed),
        ratings=RatingStore(db, change_feed),
        collection=CollectionStore(db, catalog_keys, change_feed),
        changes=change_feed,
        avatars=avatars,
        account_removal=AccountRemoval(db, avatars),
        account_export=AccountExport(db, users, avatars),
        account_import=AccountImport(db, inputs, change_feed),
        status_import=StatusImport(db, statuses_gate, inputs, change_feed),
        series_matcher=SeriesMatcher(db),
        public_profiles=PublicProfiles(db, catalog_keys),
        user_directory=UserDirectory(db),
        catalog_pages=CatalogPages(db),
        series_browse=SeriesBrowse(db),
        passwords=passwords or Passwords(),
        input_pool=inputs,
        login_attempts=SharedWindowLimit(db, LOGIN, settings.login_failures_per_15_min, 15 * 60),
        address_login_attempts=SharedWindowLimit(db, LOGIN_ADDRESS, settings.login_failures_per_address_per_15_min,
                                                 15 * 60),
        registrations=SharedWindowLimit(db, "register", settings.register_limit_per_hour, 60 * 60),
        idempotency=IdempotencyStore(db),
        fingerprint_secret=fingerprint_secret or secrets.token_bytes(32),
        access_tokens=AccessTokens(access_token_keys or [secrets.token_bytes(32)]),
    )
    routes = all_routes()
    document = published_document()
    table: list[Any] = []
    for route in routes:
        arguments: dict[str, Any] = {"services": services, "route": route.path}
        if route.path_parameters:
            arguments["path_parameters"] = route.path_parameters
        if route.handler is system.OpenApiHandler:
            arguments["document"] = document
        table.append((route.pattern, route.handler, arguments))
    # Operational, not part of the published API: not in the OpenAPI document.
    table.append((r"/metrics", metrics.MetricsHandler, {"services": services, "route": "/metrics"}))
    # The reference web app: static files, not the API, so not in the OpenAPI document either.
    table.extend(webapp.webapp_routes(services))
    app = TsundokuApplication(
        table,
        default_handler_class=NotFoundHandler,
        default_handler_args={"services": services},
        log_function=record_request,
        compress_response=True,
        serve_traceback=False,
    )
    app.services = services
    app.largest_body = largest_body_limit(settings)
    return app


__all__ = ["make_app", "all_routes", "ApiHandler", "TsundokuApplication"]
