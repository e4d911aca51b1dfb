"""Session cookies and session lifetimes (auth.tokens): what a cookie must look like, what is
stored of it, and when a session expires."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest

from auth.tokens import (
    ABSOLUTE_LIFETIME,
    IDLE_LIFETIME,
    LAST_SEEN_RESOLUTION,
    MAX_USER_AGENT_LENGTH,
    TOKEN_SHAPE,
    SessionCookie,
    SessionTimes,
    new_session_id,
    session_user_agent,
)

USER_ID = "0123456789abcdef01234567"
SECRET = "A" * 20 + "b" * 20 + "-_9"  # 43 URL-safe characters


def test_a_cookie_is_the_user_id_a_dot_and_the_secret() -> None:
    cookie = SessionCookie.parse(f"{USER_ID}.{SECRET}")
    assert cookie == SessionCookie(USER_ID, SECRET)
    assert cookie is not None and cookie.value == f"{USER_ID}.{SECRET}"


@pytest.mark.parametrize("value", [
    "",
    USER_ID,
    f"{USER_ID}.",
    f".{SECRET}",
    f"{USER_ID}{SECRET}",
    f"{USER_ID.upper()}.{SECRET}",  # the id is lower-case hex, as ObjectId writes it
    f"{USER_ID[:-1]}.{SECRET}",
    f"{USER_ID}0.{SECRET}",
    f"{USER_ID}.{SECRET[:-1]}",
    f"{USER_ID}.{SECRET}A",
    f"{USER_ID}.{SECRET[:-1]}=",  # padded base64
    f"{USER_ID}.{SECRET[:-1]}+",  # not URL-safe
    f"{USER_ID}.{SECRET}.{SECRET}",
    f"{USER_ID}.{SECRET}\n",
    f" {USER_ID}.{SECRET}",
    f"{USER_ID[:-1]}g.{SECRET}",
])
def test_anything_else_is_no_cookie(value: str) -> None:
    assert SessionCookie.parse(value) is None


def test_a_new_cookie_parses_back_to_itself_and_its_secret_is_256_random_bits() -> None:
    first, second = SessionCookie.new(USER_ID), SessionCookie.new(USER_ID)
    assert SessionCookie.parse(first.value) == first
    assert first.user_id == USER_ID and first.secret != second.secret
    assert len(first.secret) == 43


def test_only_the_secrets_sha256_is_stored() -> None:
    cookie = SessionCookie(USER_ID, SECRET)
    assert cookie.secret_hash == hashlib.sha256(SECRET.encode("ascii")).hexdigest()
    assert SECRET not in cookie.secret_hash


def test_the_log_redaction_finds_a_cookie_in_any_text() -> None:
    cookie = SessionCookie.new(USER_ID)
    found = TOKEN_SHAPE.search(f"Cookie: refreshToken={cookie.value}; other=1")
    assert found is not None and found.group() == cookie.value


def test_a_session_id_says_nothing_of_the_secret() -> None:
    first, second = new_session_id(), new_session_id()
    assert first != second and len(first) == 16
    assert SessionCookie.parse(first) is None


def test_the_user_agent_is_kept_shortened() -> None:
    assert session_user_agent(None) is None
    assert session_user_agent("") is None
    assert session_user_agent("curl/8") == "curl/8"
    assert session_user_agent("x" * 1000) == "x" * MAX_USER_AGENT_LENGTH


NOW = datetime(2024, 6, 1, tzinfo=timezone.utc)


def test_a_session_expires_after_30_idle_days() -> None:
    assert IDLE_LIFETIME == timedelta(days=30)
    session = SessionTimes(created=NOW - timedelta(days=40), last_seen=NOW - IDLE_LIFETIME)
    assert not session.is_expired(NOW)
    assert session.is_expired(NOW + timedelta(seconds=1))


def test_a_session_expires_90_days_after_it_opened_however_often_it_is_used() -> None:
    assert ABSOLUTE_LIFETIME == timedelta(days=90)
    session = SessionTimes(created=NOW - ABSOLUTE_LIFETIME, last_seen=NOW)
    assert not session.is_expired(NOW)
    assert session.is_expired(NOW + timedelta(seconds=1))


def test_last_seen_is_written_at_most_once_an_hour() -> None:
    session = SessionTimes(created=NOW, last_seen=NOW)
    assert not session.needs_touch(NOW + LAST_SEEN_RESOLUTION - timedelta(seconds=1))
    assert session.needs_touch(NOW + LAST_SEEN_RESOLUTION)


def test_the_cookie_expires_when_the_session_would() -> None:
    young = SessionTimes(created=NOW - timedelta(days=1), last_seen=NOW)
    assert young.cookie_expiry() == NOW + IDLE_LIFETIME
    old = SessionTimes(created=NOW - timedelta(days=80), last_seen=NOW)
    assert old.cookie_expiry() == NOW - timedelta(days=80) + ABSOLUTE_LIFETIME
