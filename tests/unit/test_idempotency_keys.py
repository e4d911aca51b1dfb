"""Idempotency-Key (web.idempotency): what a key may be, and the print that tells one request
from another."""

from __future__ import annotations

import pytest

from web.errors import ApiError
from web.idempotency import INVALID_KEY, fingerprint, is_key, key_of

SECRET = b"s" * 32


@pytest.mark.parametrize("key", ["a", "0f8fad5b-d9cb-469f-a165-70867728950e", "!~", "x" * 255,
                                 "".join(map(chr, range(0x21, 0x7f)))])
def test_printable_ascii_without_spaces_up_to_255_characters_is_a_key(key: str) -> None:
    assert is_key(key)
    assert key_of(key) == key


@pytest.mark.parametrize("header", ["", "x" * 256, "two words", "tab\there", "caf\u00e9", "del\x7f", "nul\x00",
                                    "line\n"])
def test_anything_else_is_refused_with_400(header: str) -> None:
    assert not is_key(header)
    with pytest.raises(ApiError) as refused:
        key_of(header)
    assert (refused.value.status, refused.value.message) == (400, INVALID_KEY)


def test_no_header_is_no_key() -> None:
    assert key_of(None) is None


def test_the_same_request_has_the_same_print_however_its_body_arrived() -> None:
    first = fingerprint(SECRET, "POST", "/user/reading-status/add/1", [b'{"status": "started"}'])
    assert fingerprint(SECRET, "POST", "/user/reading-status/add/1", [b'{"status": ', b'"started"}']) == first
    assert len(first) == 64 and int(first, 16) >= 0


def test_any_byte_of_method_uri_or_body_changes_the_print() -> None:
    method, uri, body = "POST", "/user/reading-status/add/1?x=1", b'{"status": "started"}'
    original = fingerprint(SECRET, method, uri, [body])
    prints = {original}
    for at in range(len(method)):
        prints.add(fingerprint(SECRET, method[:at] + chr(ord(method[at]) ^ 1) + method[at + 1:], uri, [body]))
    for at in range(len(uri)):
        prints.add(fingerprint(SECRET, method, uri[:at] + chr(ord(uri[at]) ^ 1) + uri[at + 1:], [body]))
    for at in range(len(body)):
        prints.add(fingerprint(SECRET, method, uri, [body[:at] + bytes([body[at] ^ 1]) + body[at + 1:]]))
    assert len(prints) == 1 + len(method) + len(uri) + len(body)  # every change a print of its own


def test_a_body_is_not_the_same_as_an_empty_or_a_longer_one() -> None:
    prints = {fingerprint(SECRET, "POST", "/auth/register", chunks) for chunks in ([], [b"a"], [b"aa"], [b"a", b"a"])}
    assert len(prints) == 3  # [b"aa"] and [b"a", b"a"] are the same bytes


def test_the_method_and_the_uri_are_told_apart() -> None:
    assert fingerprint(SECRET, "POST", "/x", []) != fingerprint(SECRET, "PUT", "/x", [])
    assert fingerprint(SECRET, "POST", "/a", []) != fingerprint(SECRET, "POST", "/b", [])


def test_the_secret_matters() -> None:
    request = ("POST", "/auth/register", [b'{"username": "alice", "password": "correct horse"}'])
    assert fingerprint(SECRET, *request) != fingerprint(b"t" + SECRET[1:], *request)
    assert fingerprint(SECRET, *request) != fingerprint(b"", *request)
