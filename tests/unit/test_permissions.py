"""Roles and the permissions they grant (auth.permissions)."""

from __future__ import annotations

from auth.permissions import ALL_PERMISSIONS, BANNED, DEFAULT_ROLE, EDIT_USERS, RATE_SERIES, is_banned, permissions_for


def test_a_member_may_rate_series_and_nothing_else() -> None:
    assert DEFAULT_ROLE == "member"
    assert permissions_for(["member"]) == [RATE_SERIES]


def test_an_admin_has_every_permission() -> None:
    assert permissions_for(["admin"]) == list(ALL_PERMISSIONS) == [RATE_SERIES, EDIT_USERS]


def test_banned_takes_every_permission_away_whatever_the_other_roles() -> None:
    assert permissions_for([BANNED]) == []
    assert permissions_for(["admin", BANNED]) == []
    assert permissions_for([BANNED, "member"]) == []


def test_an_unknown_role_or_none_grants_nothing() -> None:
    assert permissions_for(["superuser"]) == []
    assert permissions_for([]) == []
    assert permissions_for(["superuser", "member"]) == [RATE_SERIES]


def test_permissions_are_listed_once_in_a_fixed_order_whatever_the_roles_order() -> None:
    assert permissions_for(["admin", "member"]) == permissions_for(["member", "admin"]) == [RATE_SERIES, EDIT_USERS]


def test_roles_given_as_a_one_pass_iterable_are_read_whole() -> None:
    # The banned check and the grant both read the roles: a generator must not be used up by the first.
    assert permissions_for(role for role in ["member"]) == [RATE_SERIES]
    assert permissions_for(role for role in ["member", BANNED]) == []


def test_is_banned() -> None:
    assert is_banned(["member", BANNED]) and not is_banned(["member", "admin"]) and not is_banned([])
