"""Session cookies and the lifetime rules of the sessions they open.

The cookie is `<user id>.<secret>`: the user id lets every session lookup go straight to the
user's document (on a cluster sharded by user id, to one shard), and the secret, 256 random bits,
is what proves the session. Only the secret's SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

COOKIE_NAME = "refreshToken"
IDLE_LIFETIME = timedelta(days=30)
ABSOLUTE_LIFETIME = timedelta(days=90)
# Idle expiry needs a "last seen" time, but writing it on every read would double the cost of
# every request; once an hour is precise enough for a 30-day window.
LAST_SEEN_RESOLUTION = timedelta(hours=1)
# A user who logs in on many devices keeps this many most recent sessions.
MAX_SESSIONS_PER_USER = 20
# What a session records of the client that opened it, shortened: enough to recognise a device.
MAX_USER_AGENT_LENGTH = 200


# A user id: the hex of a MongoDB ObjectId, as storage.users makes it.
USER_ID_SHAPE = re.compile(r"[0-9a-f]{24}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 random bytes in URL-safe base64, unpadded
# A cookie's value anywhere in a text (what the log redaction looks for, whatever surrounds it).
TOKEN_SHAPE = re.compile(rf"{USER_ID_SHAPE.pattern}\.{_SECRET.pattern}")


@dataclass(frozen=True)
class SessionCookie:
    user_id: str
    secret: str

    @classmethod
    def new(cls, user_id: str) -> SessionCookie:
        return cls(user_id, secrets.token_urlsafe(32))  # 256 bits

    @classmethod
    def parse(cls, value: str) -> SessionCookie | None:
        """None for anything that is not `<24 hex digits>.<43 URL-safe characters>`."""
        user_id, dot, secret = value.partition(".")
        if not dot or not USER_ID_SHAPE.fullmatch(user_id) or not _SECRET.fullmatch(secret):
            return None
        return cls(user_id, secret)

    @property
    def value(self) -> str:
        return f"{self.user_id}.{self.secret}"

    @property
    def secret_hash(self) -> str:
        """Only this is stored: a database leak must not hand out working sessions."""
        return hashlib.sha256(self.secret.encode("ascii")).hexdigest()


def new_session_id() -> str:
    """The name `GET /auth/sessions` shows and `DELETE /auth/sessions/:id` takes: random, so it
    says nothing about the cookie's secret (never the secret's hash, which is what is stored)."""
    return secrets.token_urlsafe(12)


def session_user_agent(header: str | None) -> str | None:
    return header[:MAX_USER_AGENT_LENGTH] if header else None


@dataclass(frozen=True)
class SessionTimes:
    created: datetime
    last_seen: datetime

    def is_expired(self, now: datetime) -> bool:
        return now - self.last_seen > IDLE_LIFETIME or now - self.created > ABSOLUTE_LIFETIME

    def needs_touch(self, now: datetime) -> bool:
        return now - self.last_seen >= LAST_SEEN_RESOLUTION

    def cookie_expiry(self) -> datetime:
        return min(self.last_seen + IDLE_LIFETIME, self.created + ABSOLUTE_LIFETIME)
