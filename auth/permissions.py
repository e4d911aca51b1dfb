"""Roles and the permissions they grant."""

from __future__ import annotations

from collections.abc import Iterable

RATE_SERIES = "rate-series"
EDIT_USERS = "edit-users"
ALL_PERMISSIONS: tuple[str, ...] = (RATE_SERIES, EDIT_USERS)

DEFAULT_ROLE = "member"
BANNED = "banned"
ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "member": (RATE_SERIES,),
    "admin": ALL_PERMISSIONS,
    # Banned users keep signing in and keep their own lists; they just cannot act on others',
    # and show nothing to others (no profile, no profile image, no new image).
    BANNED: (),
}
ROLES: tuple[str, ...] = tuple(ROLE_PERMISSIONS)


def is_banned(roles: Iterable[str]) -> bool:
    return BANNED in roles


def permissions_for(roles: Iterable[str]) -> list[str]:
    roles = list(roles)
    if is_banned(roles):
        return []
    granted = {p for role in roles for p in ROLE_PERMISSIONS.get(role, ())}
    return [p for p in ALL_PERMISSIONS if p in granted]
