"""Access tokens (auth.access_tokens): what is signed, what is accepted, key rotation, and that
no log line keeps one."""

from __future__ import annotations

import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jwt
import pytest

from auth.access_tokens import ACCESS_TOKEN_LIFETIME, AccessClaims, AccessTokens, bearer_token
from server import access_token_keys
from settings import Settings
from web.log_redaction import redact

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
USER = "6650a1b2c3d4e5f60718293a"
SESSION = "CvXxZHYVrPbbrqOf"
KEY, NEW_KEY = b"k" * 32, b"n" * 32


def test_a_token_names_the_user_and_session_until_it_expires() -> None:
    tokens = AccessTokens([KEY])
    token = tokens.issue(USER, SESSION, NOW)
    assert tokens.verify(token, NOW) == AccessClaims(USER, SESSION)
    assert tokens.verify(token, NOW + ACCESS_TOKEN_LIFETIME - timedelta(seconds=1)) == AccessClaims(USER, SESSION)
    assert tokens.verify(token, NOW + ACCESS_TOKEN_LIFETIME) is None


def test_rotation_signs_with_the_new_key_and_still_accepts_the_old_one() -> None:
    old = AccessTokens([KEY]).issue(USER, SESSION, NOW)
    rotated = AccessTokens([NEW_KEY, KEY])
    assert rotated.verify(old, NOW) == AccessClaims(USER, SESSION)
    assert AccessTokens([NEW_KEY]).verify(rotated.issue(USER, SESSION, NOW), NOW) == AccessClaims(USER, SESSION)
    assert AccessTokens([NEW_KEY]).verify(old, NOW) is None  # the old key dropped: its tokens with it


@pytest.mark.parametrize("claims", [
    {"typ": "personal"},  # another kind of token signed with the same key
    {"typ": None},
    {"sub": "alice"},  # not a user id
    {"sid": {"$ne": None}},
    {"exp": None},
])
def test_a_signed_token_of_another_shape_is_refused(claims: dict) -> None:
    payload = {"sub": USER, "sid": SESSION, "typ": "access", "iat": int(NOW.timestamp()),
               "exp": int((NOW + ACCESS_TOKEN_LIFETIME).timestamp()), **claims}
    payload = {name: value for name, value in payload.items() if value is not None}
    assert AccessTokens([KEY]).verify(jwt.encode(payload, KEY, algorithm="HS256"), NOW) is None


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # HS512 would want 64 bytes
def test_only_hs256_is_accepted() -> None:
    payload = {"sub": USER, "sid": SESSION, "typ": "access", "iat": int(NOW.timestamp()),
               "exp": int((NOW + ACCESS_TOKEN_LIFETIME).timestamp())}
    for algorithm in ("none", "HS512"):
        token = jwt.encode(payload, None if algorithm == "none" else KEY, algorithm=algorithm)
        assert AccessTokens([KEY]).verify(token, NOW) is None


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer abc.def.ghi", "abc.def.ghi"), ("bearer  abc ", "abc"), ("Basic Zm9v", None), (None, None),
    ("Bearer", None),
])
def test_the_bearer_header(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


TOKEN = AccessTokens([KEY]).issue(USER, SESSION, NOW)


@pytest.mark.parametrize("text", [
    f"Authorization: Bearer {TOKEN}\r\nHost: x",
    f"{{'Authorization': 'Bearer {TOKEN}', 'Host': 'x'}}",  # a dict's repr
    f'{{"headers": "{{\\"authorization\\": \\"Bearer {TOKEN}\\"}}"}}',  # JSON in JSON
    f"Invalid header value 'Bearer {TOKEN}\\x00'",  # Tornado's line: the value without its name
    f"a token without its name: {TOKEN}.",
])
def test_an_access_token_is_redacted_in_any_quoting_or_without_its_name(text: str) -> None:
    signature = TOKEN.split(".")[2]
    assert TOKEN not in redact(text) and signature not in redact(text)


def test_any_authorization_value_is_redacted() -> None:
    assert redact("authorization=Basic c2VjcmV0OnBhc3M= rest") == "authorization=***"
    assert "metrics-secret" not in redact("{'Authorization': 'Bearer metrics-secret'}")


def test_the_key_is_made_once_into_data_dir_unless_a_setting_gives_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    made = access_token_keys(settings)
    secret_file = tmp_path / "data" / "access-token-secret"
    assert len(made) == 1 and len(made[0]) == 32 and stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert access_token_keys(settings) == made  # a restart, or another process: the same key
    given = settings.with_overrides(access_token_secret="s" * 32, access_token_previous_secret="p" * 32)
    assert access_token_keys(given) == [b"s" * 32, b"p" * 32]  # signs with the first


def test_redaction_scans_a_line_of_token_fragments_once() -> None:
    # The access log line holds the request's path (up to 64 KB): `eyJ` over and over made the
    # old pattern rescan the rest of the line from each `eyJ` (quadratic: a second for 60 KB on
    # the event loop, minutes for this megabyte). Linear, this takes milliseconds.
    line = "GET /" + "eyJ" * 350_000 + " 404"
    assert redact(line) == line  # no JWT in it: nothing to take out
    assert redact(f"x/ab{TOKEN}.rest") == "x/ab***.rest"  # what precedes a token on its segment stays
