"""The signed-in user of a request, and what a route asks to be read with the session."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from auth.permissions import is_banned, permissions_for
from storage.records import UserRecord


@dataclass(frozen=True)
class SessionQuery:
    """What a route needs fetched together with the session, in the same round trip:
    extra fields of the user document, or one catalog document (under `catalog`)."""

    fields: dict[str, Any] = field(default_factory=dict)
    catalog: tuple[str, int] | None = None  # ("series" or "volumes", id)


@dataclass(frozen=True)
class AuthenticatedUser:
    """Who is asking: the user's record and the session they asked with. Nothing else: what a
    verb needs besides is declared with `@reads` and arrives in the handler's `brought`."""

    record: UserRecord
    session_hash: str

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def permissions(self) -> list[str]:
        return permissions_for(self.record.roles)

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    @property
    def banned(self) -> bool:
        return is_banned(self.record.roles)
