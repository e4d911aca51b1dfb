"""The guard of a GET that writes: such a request changes nothing unless it proves that a page of
the service's own origin, or of an allowed web origin, sent it.

Why GET needs it when POST does not: the session cookie is `SameSite=Lax` (COOKIE_SAMESITE's
default), which a browser still sends on a top-level navigation from any site (a link, a form with
`method=get`), and on every request from another origin of the same site (an `<img src>` on a
sibling host); with `COOKIE_SAMESITE=none`, on every request from anywhere. A POST from
elsewhere carries `Origin`, which `ApiHandler.check_origin` holds to the allowed ones; a
navigation or an image carries none. So a GET that writes asks for positive proof:

- `Origin`, when the request has one, decides alone: the service's own origin or one of
  `CORS_ORIGINS`. Browsers send it on every `fetch()` to another origin (so the web client's
  calls pass), never on a navigation or an image, and a page cannot forge it.
- Without `Origin`: `Sec-Fetch-Site: same-origin`, which browsers send on requests from the
  service's own pages (a page cannot set it either). `same-site`, `cross-site` and `none` (an
  address typed in, a bookmark) prove nothing.
- Neither header (an old browser, curl): refused too. A client that is not a browser has no
  victim's cookie to ride on; it sends the header, or uses POST and DELETE.

A verb declares the guard with `@same_origin_only`; `ApiHandler.prepare` enforces it after
authentication, and the OpenAPI document lists its 403 from the same declaration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

FETCH_SITE_HEADER = "Sec-Fetch-Site"
SAME_ORIGIN = "same-origin"

Verb = TypeVar("Verb", bound=Callable[..., Any])


def proves_same_origin(origin: str | None, fetch_site: str | None, trusted: Callable[[str], bool]) -> bool:
    """Whether a request with these `Origin` and `Sec-Fetch-Site` headers (None: absent) comes
    from a page the service trusts; `trusted` says whether an origin is the service's own or an
    allowed one. An `Origin` that is present decides, even beside `Sec-Fetch-Site: same-origin`:
    a browser never sends the two in contradiction, so a request that does is not believed."""
    if origin is not None:
        return trusted(origin)
    return fetch_site is not None and fetch_site.strip().lower() == SAME_ORIGIN


def same_origin_only(verb: Verb) -> Verb:
    """Declares that `verb` writes though its method is safe (GET): it runs only for a request
    that `proves_same_origin`."""
    # A mark on the verb itself (functools.wraps in @reads carries it over), read back by
    # `requires_same_origin`; a function's type has no such attribute.
    verb.same_origin_only = True  # type: ignore[attr-defined]
    return verb


def requires_same_origin(verb: Any) -> bool:
    return getattr(verb, "same_origin_only", False) is True
