"""Serves the reference web app (the repository's `webapp/` folder): its page at `/` and its files
under `/app/`, a prefix no API route uses. The app talks to the API from the same origin, so the
HttpOnly session cookie is its only credential.

Not part of the published API: these routes are not in the OpenAPI document (as `/metrics` is
not), and they take no input. Tornado's StaticFileHandler answers an ETag of each file's bytes
and 304 to an If-None-Match that names it; `Cache-Control: no-cache` makes a browser ask again
each time, so a new version is picked up at once and an unchanged one costs a 304."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tornado.web

from web.errors import STANDARD_MESSAGES, message_body
from web.services import Services

WEBAPP_DIR = Path(__file__).resolve().parent.parent / "webapp"
PAGE = "index.html"
ASSET_PREFIX = "/app/"
# No inline script or style, nothing from elsewhere: an injected tag can neither run nor load.
# Images also from data: and blob: URLs (an avatar previewed before its upload).
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                           "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
                           "form-action 'self'")


class WebAppFileHandler(tornado.web.StaticFileHandler):
    """A file of the web app, under `/app/`."""

    def initialize(self, services: Services, route: str, path: str) -> None:  # type: ignore[override]
        super().initialize(path=path)
        self.services = services  # for the request metrics (web.access_log)
        self.route = route

    def set_default_headers(self) -> None:
        self.clear_header("Server")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.set_header("Referrer-Policy", "same-origin")

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", "no-cache")

    def compute_etag(self) -> str | None:
        # Tornado keeps each file's hash for the life of the process: a file changed under a running
        # service would keep its old tag, and a browser its old copy. The files are the app's own
        # few KB (no client chooses their size), so hashing each time costs microseconds.
        assert self.absolute_path is not None
        return f'"{self.get_content_version(self.absolute_path)}"'

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # A missing file answers in the API's shape, not Tornado's HTML page.
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(message_body(status_code, STANDARD_MESSAGES.get(status_code, self._reason))))


class WebAppPageHandler(WebAppFileHandler):
    """`/`: the app's one page (the screens are hash routes: `/#/list`, `/#/series/<slug>`)."""

    async def get(self, path: str = PAGE, include_body: bool = True) -> None:
        await super().get(PAGE, include_body)

    async def head(self, path: str = PAGE) -> None:
        await super().get(PAGE, include_body=False)


def webapp_routes(services: Services) -> list[tuple[str, type[tornado.web.RequestHandler], dict[str, Any]]]:
    """The route table's entries for the web app."""
    return [
        (r"/", WebAppPageHandler, {"services": services, "route": "/", "path": str(WEBAPP_DIR)}),
        (ASSET_PREFIX + r"(.*)", WebAppFileHandler,
         {"services": services, "route": ASSET_PREFIX + "{file}", "path": str(WEBAPP_DIR)}),
    ]
