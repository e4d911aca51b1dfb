"""The rule of web.same_origin, as a table: which `Origin` and `Sec-Fetch-Site` a GET that writes
must carry, for a service at https://api.tsundoku.test whose web client is https://app.tsundoku.test."""

from __future__ import annotations

import pytest

from web.same_origin import proves_same_origin, requires_same_origin, same_origin_only

OWN = "https://api.tsundoku.test"
WEB_CLIENT = "https://app.tsundoku.test"
TRUSTED = {OWN, WEB_CLIENT}

# (what sends it, Origin, Sec-Fetch-Site, proves it)
TABLE = [
    ("a fetch() from the service's own page", None, "same-origin", True),
    ("a POST from the service's own page", OWN, "same-origin", True),
    ("a fetch() from the web client, same site", WEB_CLIENT, "same-site", True),
    ("a fetch() from the web client on another site", WEB_CLIENT, "cross-site", True),
    ("a fetch() from an allowed origin, by a browser without Fetch Metadata", WEB_CLIENT, None, True),
    ("the header's value in capitals", None, "Same-Origin", True),
    ("a link or a form on another site", None, "cross-site", False),
    ("a link, a form or an <img> on a sibling host of the same site", None, "same-site", False),
    ("a fetch() from a sibling host that is not allowed", "https://evil.tsundoku.test", "same-site", False),
    ("a fetch() from another site", "https://evil.example", "cross-site", False),
    ("an address typed in, or a bookmark", None, "none", False),
    ("an old browser or curl: no header at all", None, None, False),
    ("a sandboxed frame (opaque origin)", "null", "cross-site", False),
    ("a trusted origin's look-alike", "https://app.tsundoku.test.evil.example", "cross-site", False),
    ("a trusted origin on another scheme", "http://app.tsundoku.test", "cross-site", False),
    ("a trusted origin on another port", "https://app.tsundoku.test:8443", "same-site", False),
    ("a trusted origin with a path", WEB_CLIENT + "/", "same-site", False),
    ("two origins in one header", f"{WEB_CLIENT}, https://evil.example", "cross-site", False),
    ("an empty Origin", "", "same-origin", False),
    ("an Origin that contradicts same-origin", "https://evil.example", "same-origin", False),
    ("an unknown Sec-Fetch-Site value", None, "same-origin-ish", False),
    ("an empty Sec-Fetch-Site", None, "", False),
]


@pytest.mark.parametrize("sender, origin, fetch_site, proven", TABLE, ids=[row[0] for row in TABLE])
def test_which_requests_prove_they_come_from_a_trusted_page(sender: str, origin: str | None,
                                                            fetch_site: str | None, proven: bool) -> None:
    assert proves_same_origin(origin, fetch_site, TRUSTED.__contains__) is proven


def test_the_declaration_marks_the_verb_and_nothing_else() -> None:
    async def toggle() -> None: ...

    async def read() -> None: ...

    assert requires_same_origin(same_origin_only(toggle)) is True
    assert requires_same_origin(read) is False and requires_same_origin(None) is False
