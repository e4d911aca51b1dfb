"""Opaque refresh tokens and the lifetime rules of the sessions they open."""

from __future__ import annotations

import hashlib
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


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)  # 256 bits


def token_hash(token: str) -> str:
    """Only this is stored: a database leak must not hand out working tokens."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


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
