"""Personal access tokens: long-lived tokens a person makes for an app (a tracker, a reading app),
each limited to scopes, pasted into the app and revoked when it is done with.

A token is `tsu_pat_<user id>_<secret>`: the prefix tells it from an access token (a JWT) and from
a cookie at a glance, in a header or a leaked file; the user id sends its lookup straight to the
user's document, and the secret (256 random bits) proves it. Only the secret's SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from auth.tokens import USER_ID_SHAPE

PERSONAL_TOKEN_PREFIX = "tsu_pat_"
# Reading the user's own data (every GET of it, and the list reads a web client sends as POST).
READ = "read"
# Writing the user's lists (reading statuses, ratings, the collection, imports into them); implies READ.
WRITE = "write"
SCOPES: tuple[str, ...] = (READ, WRITE)
_IMPLIED: dict[str, frozenset[str]] = {READ: frozenset({READ}), WRITE: frozenset({READ, WRITE})}
# Like sessions (auth.tokens.MAX_SESSIONS_PER_USER), a user's tokens are few and live in their
# document; a user who wants another revokes one.
MAX_PERSONAL_TOKENS_PER_USER = 20
MAX_LIFETIME_DAYS = 366
MAX_NAME_LENGTH = 100
# A token in any text (what the log redaction looks for).
_SECRET = r"[A-Za-z0-9_-]{43}"
PERSONAL_TOKEN_SHAPE = re.compile(rf"{PERSONAL_TOKEN_PREFIX}{USER_ID_SHAPE.pattern}_{_SECRET}")
_PARTS = re.compile(rf"{PERSONAL_TOKEN_PREFIX}({USER_ID_SHAPE.pattern})_({_SECRET})")


def is_personal_token(token: str) -> bool:
    """Whether a Bearer credential is meant as a personal token (else it is an access token)."""
    return token.startswith(PERSONAL_TOKEN_PREFIX)


def grants(scopes: tuple[str, ...], needed: str) -> bool:
    return any(needed in _IMPLIED.get(scope, ()) for scope in scopes)


@dataclass(frozen=True)
class PersonalToken:
    user_id: str
    secret: str

    @classmethod
    def new(cls, user_id: str) -> PersonalToken:
        return cls(user_id, secrets.token_urlsafe(32))

    @classmethod
    def parse(cls, value: str) -> PersonalToken | None:
        """None for anything that is not `tsu_pat_<24 hex digits>_<43 URL-safe characters>`."""
        found = _PARTS.fullmatch(value)
        return cls(found.group(1), found.group(2)) if found else None

    @property
    def value(self) -> str:
        return f"{PERSONAL_TOKEN_PREFIX}{self.user_id}_{self.secret}"

    @property
    def secret_hash(self) -> str:
        """Only this is stored: a database leak must not hand out working tokens."""
        return hashlib.sha256(self.secret.encode("ascii")).hexdigest()


def new_token_id() -> str:
    """The name `GET /auth/tokens` shows and `DELETE /auth/tokens/:id` takes: random, unrelated to the secret."""
    return secrets.token_hex(8)


@dataclass(frozen=True)
class PersonalTokenGrant:
    """What a personal token that authenticated a request allows, and whether it is due a touch."""

    id: str
    scopes: tuple[str, ...]

    def allows(self, needed: str | None) -> bool:
        """`needed` is the scope a route declares; None: no personal token may use the route."""
        return needed is not None and grants(self.scopes, needed)


def is_expired(expires: datetime, now: datetime) -> bool:
    return now >= expires


def expiry(now: datetime, days: int) -> datetime:
    return now + timedelta(days=days)
