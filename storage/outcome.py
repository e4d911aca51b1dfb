"""What a conditional write on an embedded list did."""

from __future__ import annotations

import enum


class WriteOutcome(enum.Enum):
    DONE = "done"
    CONFLICT = "conflict"  # an add found an entry already there
    NOT_FOUND = "not found"  # an update or delete found no entry


class ListsFull(Exception):
    """The user's document is past the size at which its lists stop growing."""
