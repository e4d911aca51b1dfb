"""argon2id password hashing, in a small pool of its own so that a flood of logins never stalls
other requests, never queues without bound, and never takes more than a bounded amount of memory."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")
# The beginning of some username: the same characters, at most as many.
_USERNAME_BEGINNING = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128
# The rules in words, for the `errors` of a 422 that refuses a name or a password.
USERNAME_RULE = "3 to 32 letters, digits, '_', '.' or '-'"
PASSWORD_RULE = f"{PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters of valid Unicode"
# argon2-cffi's default costs take 64 MiB of memory per hash (memory_cost=65536 KiB) and about
# 100 ms of both cores of the machine measured: two at once hold 128 MiB at most and leave the
# event loop, the database and the image workers their share of the processor.
HASHES_AT_ONCE = 2
# Hashes that may wait for a worker: one more is refused at once (PasswordsBusy) instead of
# queued without bound, so the last one admitted waits about 16 / 2 hash times (under a second).
HASHES_WAITING = 16
# Of those places, one caller (a client address) holds at most this many: a burst from one
# address cannot fill the queue, so another address's login waits behind a few hashes at most.
HASHES_PER_CALLER = 4
T = TypeVar("T")


def is_valid_username(username: str) -> bool:
    return USERNAME_PATTERN.fullmatch(username) is not None


def could_begin_a_username(text: str) -> bool:
    """Whether some username could start with `text`: a search by name that cannot match
    anyone needs no query."""
    return _USERNAME_BEGINNING.fullmatch(text) is not None


def is_valid_password(password: str) -> bool:
    return PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH and _encodable(password)


def _encodable(text: str) -> bool:
    """JSON can carry a lone surrogate (`"\\ud800"`) that no UTF-8 encoder, argon2's included, takes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class PasswordsBusy(Exception):
    """As many hashes as the bound allows are running or waiting: this one is refused, not queued."""


class Passwords:
    """Hashes and verifies passwords. The default costs are argon2-cffi's RFC 9106 profile.

    Every hash and verification (login, registration, a change of password, a deletion) runs in
    this object's own pool of `at_once` threads, never in asyncio's default executor, which other
    work shares; at most `waiting` more wait for it, and one caller holds at most `per_caller`
    of those places. Past either bound the call raises PasswordsBusy at once."""

    def __init__(self, hasher: PasswordHasher | None = None, *, at_once: int = HASHES_AT_ONCE,
                 waiting: int = HASHES_WAITING, per_caller: int = HASHES_PER_CALLER) -> None:
        self._hasher = hasher or PasswordHasher()
        # Verifying against this when the username is unknown makes a failed login take as long
        # as a wrong password, so response times do not reveal which usernames exist.
        self._decoy_hash = self._hasher.hash("decoy password that matches nothing")
        self._pool = ThreadPoolExecutor(max_workers=at_once, thread_name_prefix="passwords")
        self._capacity = at_once + waiting
        self._per_caller = per_caller
        # Running or waiting, in all and by caller; released when the work itself ends (in its
        # thread), not when the request stops waiting for it, so abandoned work counts while it runs.
        self._admitted = 0
        self._by_caller: dict[str, int] = {}
        self._lock = threading.Lock()

    @property
    def admitted(self) -> int:
        """Hashes running or waiting now."""
        return self._admitted

    async def hash(self, password: str, *, caller: str) -> str:
        return await self._run(caller, self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str, *, caller: str) -> bool:
        return await self._run(caller, self._verify, password_hash, password)

    async def _run(self, caller: str, work: Callable[..., T], *args: Any) -> T:
        with self._lock:
            held = self._by_caller.get(caller, 0)
            if self._admitted >= self._capacity or held >= self._per_caller:
                raise PasswordsBusy()
            self._admitted += 1
            self._by_caller[caller] = held + 1
        try:
            job = self._pool.submit(work, *args)
        except BaseException:
            self._release(caller)
            raise
        job.add_done_callback(lambda _job: self._release(caller))
        return await asyncio.wrap_future(job)

    def _release(self, caller: str) -> None:
        with self._lock:
            self._admitted -= 1
            held = self._by_caller.pop(caller) - 1
            if held:
                self._by_caller[caller] = held  # only callers with work in hand are kept

    def _verify(self, password_hash: str | None, password: str) -> bool:
        if not _encodable(password):
            password = ""  # still verified against a hash, so the answer takes the same time
        try:
            return self._hasher.verify(password_hash or self._decoy_hash, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False
