"""The signed-in user of a request."""

from __future__ import annotations

from dataclasses import dataclass

from auth.permissions import is_banned, permissions_for
from auth.personal_tokens import PersonalTokenGrant
from handlers.schemas.settings import NSFW_18, settings_with_defaults
from storage.records import UserRecord


@dataclass(frozen=True)
class AuthenticatedUser:
    """Who is asking: the user's record and the session they asked with. Nothing else: what a
    verb needs besides is declared with `@reads` and arrives in the handler's `brought`."""

    record: UserRecord
    session_hash: str
    session_id: str | None = None  # None for a session stored before sessions had ids
    # The access token that authenticated the request (`Authorization: Bearer`); None for the cookie.
    access_token: str | None = None
    # The personal token that authenticated the request, and its scopes; None for a session.
    personal_token: PersonalTokenGrant | None = None

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

    @property
    def shows_nsfw18(self) -> bool:
        """Whether 18+ titles exist for this user: age-verified, and `nsfw-mode` shows them."""
        return self.record.age_verified and settings_with_defaults(self.record.settings)["nsfw-mode"] == NSFW_18
