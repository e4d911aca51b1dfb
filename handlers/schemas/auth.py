"""Accounts and sessions: request bodies and the User object."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, StrictBool, StrictStr

from auth.clock import iso_utc
from auth.permissions import permissions_for
from handlers.schemas.common import RequestModel
from handlers.schemas.settings import UserSettings, settings_with_defaults


class Credentials(RequestModel):
    username: StrictStr
    password: StrictStr


class LogoutRequest(RequestModel):
    all: StrictBool = False


class User(BaseModel):
    id: str
    username: str
    slug: str
    profile_image: str | None
    registered: datetime
    age_verified: bool
    roles: list[str]
    permissions: list[str]
    settings: UserSettings  # type: ignore[valid-type]


class UserEnvelope(BaseModel):
    user: User


def avatar_url(user_id: str, profile_image: dict[str, Any] | None, resolution: str = "scaled") -> str | None:
    if not profile_image:
        return None
    return f"/user/avatar/{user_id}/{resolution}?v={profile_image['version']}"


def user_payload(document: dict[str, Any]) -> dict[str, Any]:
    """The API's User object from a stored user document."""
    roles = list(document.get("roles") or [])
    return {
        "id": document["_id"],
        "username": document["username"],
        "slug": document["slug"],
        "profile_image": avatar_url(document["_id"], document.get("profile_image")),
        "registered": iso_utc(document["registered"]),
        "age_verified": bool(document.get("age_verified")),
        "roles": roles,
        "permissions": permissions_for(roles),
        "settings": settings_with_defaults(document.get("settings")),
    }
