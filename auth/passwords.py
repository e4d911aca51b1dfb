"""argon2id password hashing, run off the event loop so a login never stalls other requests."""

from __future__ import annotations

import asyncio
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128


def is_valid_username(username: str) -> bool:
    return USERNAME_PATTERN.fullmatch(username) is not None


def is_valid_password(password: str) -> bool:
    return PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH and _encodable(password)


def _encodable(text: str) -> bool:
    """JSON can carry a lone surrogate (`"\\ud800"`) that no UTF-8 encoder, argon2's included, takes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Passwords:
    """Hashes and verifies passwords. The default costs are argon2-cffi's RFC 9106 profile."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        # Verifying against this when the username is unknown makes a failed login take as long
        # as a wrong password, so response times do not reveal which usernames exist.
        self._decoy_hash = self._hasher.hash("decoy password that matches nothing")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return await asyncio.to_thread(self._verify, password_hash, password)

    def _verify(self, password_hash: str | None, password: str) -> bool:
        if not _encodable(password):
            password = ""  # still verified against a hash, so the answer takes the same time
        try:
            return self._hasher.verify(password_hash or self._decoy_hash, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False
