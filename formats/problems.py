"""Why a file (or a JSON body) is refused, without HTTP: the route that reads it answers each
kind with its status (`web.errors.file_refusal`: 415, 413, 400). The message is for the user,
as it is answered: it says what is wrong and, where it can, on which line."""

from __future__ import annotations


class FileProblem(Exception):
    """A file this service does not take. Not a ValueError: a parser's own `except ValueError`
    must not swallow it."""


class NotThisKind(FileProblem):
    """Not a file of the format at all (its media type)."""


class TooLarge(FileProblem):
    """Past one of the format's limits: bytes, entries, values."""


class Unreadable(FileProblem):
    """Not a valid file of its format. `field` names the value at fault, when there is one,
    and `reason` what is wrong with it."""

    def __init__(self, message: str, field: str | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.reason = reason
