"""What a conditional write on an embedded list did."""

from __future__ import annotations

import enum


class WriteOutcome(enum.Enum):
    DONE = "done"
    CONFLICT = "conflict"  # an add found an entry already there
    NOT_FOUND = "not found"  # an update or delete found no entry
    CHANGED = "changed"  # a conditional update or delete found the entry changed since it was read (If-Match)


class ListsFull(Exception):
    """The user's document is past the size at which its lists stop growing."""


class UserGone(Exception):
    """The user's document is gone: the account was deleted after the request's session was
    read. The request is answered as one without a session (401), never as a conflict."""
