"""Personal tokens without a server: their shape, their scopes, their redaction, and that every
authenticated operation says what a personal token may do there."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import get_args

import pytest

from auth.access_tokens import JWT_SHAPE
from auth.personal_tokens import READ, SCOPES, WRITE, PersonalToken, PersonalTokenGrant, is_expired, is_personal_token
from handlers.application import all_routes
from handlers.schemas.auth import Scope
from web.log_redaction import redact

USER = "6b15d210e691f01c767e40cd"


def test_a_token_names_its_user_and_parses_back() -> None:
    token = PersonalToken.new(USER)
    assert token.value.startswith(f"tsu_pat_{USER}_") and is_personal_token(token.value)
    assert PersonalToken.parse(token.value) == token
    assert not JWT_SHAPE.search(token.value)  # never taken for an access token
    assert len(token.secret_hash) == 64 and token.secret not in token.secret_hash


@pytest.mark.parametrize("value", ["", "tsu_pat_", f"tsu_pat_{USER}", f"tsu_pat_{USER}_short",
                                   f"tsu_pat_{USER.upper()}_{'a' * 43}", f"tsu_pat_{USER}_{'a' * 44}",
                                   f"tsu_pat_{USER}_{'a' * 42}!", f"{USER}.{'a' * 43}"])
def test_anything_else_is_no_token(value: str) -> None:
    assert PersonalToken.parse(value) is None


def test_write_implies_read_and_no_scope_opens_a_refusing_route() -> None:
    assert PersonalTokenGrant("x", (WRITE,)).allows(READ) and PersonalTokenGrant("x", (WRITE,)).allows(WRITE)
    assert PersonalTokenGrant("x", (READ,)).allows(READ) and not PersonalTokenGrant("x", (READ,)).allows(WRITE)
    assert not PersonalTokenGrant("x", (READ, WRITE)).allows(None)


def test_expiry_is_reached_at_the_instant() -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert is_expired(now, now) and not is_expired(now + timedelta(milliseconds=1), now)


def test_the_request_model_takes_the_scopes_there_are() -> None:
    assert get_args(Scope) == SCOPES


@pytest.mark.parametrize("template", ["Authorization: Bearer {}", "token={} rest", "'{}'", '{{"t": "{}"}}', "{}"])
def test_a_personal_token_is_redacted_in_any_quoting_or_without_its_name(template: str) -> None:
    token = PersonalToken.new(USER)
    assert token.secret not in redact(template.format(token.value))


def test_every_authenticated_operation_declares_a_known_scope_or_none() -> None:
    declared = {(method.upper(), route.path): operation.scope for route in all_routes()
                for method, operation in route.handler.api.items() if operation.auth}
    assert set(declared.values()) <= {None, READ, WRITE}
    # What no personal token may do, whatever its scopes (issue 30): spelled out, so that a route
    # that starts taking a token here is a change someone decided.
    for refused in [("POST", "/auth/change-password"), ("DELETE", "/user/account"), ("GET", "/auth/sessions"),
                    ("DELETE", "/auth/sessions/{id}"), ("POST", "/auth/logout"), ("GET", "/auth/tokens"),
                    ("POST", "/auth/tokens"), ("DELETE", "/auth/tokens/{id}"), ("POST", "/auth/refresh"),
                    ("GET", "/auth/me"), ("DELETE", "/admin-users/account/{id}"),
                    ("POST", "/admin-users/update-image/{id}"), ("DELETE", "/admin-users/delete-image/{id}"),
                    ("POST", "/users/{id}/save-settings"), ("POST", "/user/import")]:
        assert declared[refused] is None, refused
    # Every read of the user's own data takes `read`.
    assert all(scope == READ for (method, path), scope in declared.items()
               if method == "GET" and path.startswith("/user/") and "toggle" not in path)
