"""A large JSON file read in bounded memory: the elements of the array under one key of its
top-level object are handed out one at a time, so that what is held follows the largest element,
never the file.

Each value is decoded by `json`'s C scanner from a window of the text, which grows only while one
value does (up to `max_value_chars`, then TooLarge). Errors read as `json.loads`'s do, with the
line, column and character of the whole file. Pure: no service state."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, TextIO

from formats.problems import TooLarge, Unreadable

BLOCK_CHARS = 1 << 20  # read at a time
_WHITESPACE = re.compile(r"[ \t\n\r]*")
# What may follow a number's first digits up to the window's end when the number goes on past it
# (`12.` or `1e-`, which `json` reads as 12 or 1 and then stops).
_NUMBER_GOES_ON = re.compile(r"[0-9.eE+-]*\Z")
_DECODER = json.JSONDecoder()
# An error this far from the window's end is not where the window cut the text (`\uXXXX` and
# `false` are the longest things that can be cut short).
_CUT_SHORT = 64


class JsonSyntaxError(Unreadable):
    """Not JSON: what `json` would say, and where."""


class ObjectStream:
    """One pass over `file`. `elements()` yields the elements of the array under `array_key`;
    once it has run to the end, `skeleton` is the top-level value with that array empty (the
    other members as written), for validating the rest of the document's shape."""

    def __init__(self, file: TextIO, array_key: str, max_value_chars: int) -> None:
        self._file = file
        self._key = array_key
        self._max = max_value_chars
        self._text = ""  # the window: what was read and not yet consumed, and a little before
        self._at = 0
        self._eof = False
        # Where the window starts in the file, for error positions.
        self._base = 0
        self._lines = 0
        self._line_start = 0
        self.skeleton: Any = None

    def elements(self) -> Iterator[Any]:
        if self._peek() != "{":
            self.skeleton = self._value()
            self._end()
            return
        self._at += 1
        members: dict[str, Any] = {}
        if self._peek() == "}":
            self._at += 1
        else:
            while True:
                if self._peek() != '"':
                    raise self._syntax("Expecting property name enclosed in double quotes")
                key = self._value()
                if self._peek() != ":":
                    raise self._syntax("Expecting ':' delimiter")
                self._at += 1
                if key == self._key:
                    if key in members:
                        # `json` would keep the last; the first would have been read for nothing.
                        raise Unreadable(f"{key}: given twice", field=key, reason="given twice")
                    if self._peek() == "[":
                        self._at += 1
                        members[key] = []
                        yield from self._array()
                    else:
                        members[key] = self._value()
                else:
                    members[key] = self._value()
                separator = self._peek()
                if separator not in (",", "}"):
                    raise self._syntax("Expecting ',' delimiter")
                self._at += 1
                if separator == "}":
                    break
        self._end()
        self.skeleton = members

    def _array(self) -> Iterator[Any]:
        if self._peek() == "]":
            self._at += 1
            return
        while True:
            yield self._value()
            separator = self._peek()
            if separator not in (",", "]"):
                raise self._syntax("Expecting ',' delimiter")
            self._at += 1
            if separator == "]":
                return

    def _end(self) -> None:
        if self._peek():
            raise self._syntax("Extra data")

    def _peek(self) -> str:
        """The next character that is not whitespace ("" at the end of the file), not consumed."""
        while True:
            found = _WHITESPACE.match(self._text, self._at)
            self._at = found.end() if found else self._at
            if self._at < len(self._text) or self._eof:
                return self._text[self._at:self._at + 1]
            self._read(BLOCK_CHARS)

    def _value(self) -> Any:
        self._peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self._text, self._at)
            except json.JSONDecodeError as error:
                # Perhaps only cut off by the window's end (a string that goes on past it, or a
                # literal or escape cut short, which fail within a few characters of it): read on.
                if self._eof or (error.pos + _CUT_SHORT < len(self._text)
                                 and not error.msg.startswith("Unterminated string")):
                    raise self._syntax(error.msg, error.pos) from None
                self._grow()
                continue
            if not self._eof and (end == len(self._text) or (
                    isinstance(value, (int, float)) and _NUMBER_GOES_ON.match(self._text, end))):
                self._grow()  # a number may go on in the next block
                continue
            if end - self._at > self._max:
                raise TooLarge(self._too_large())
            self._at = end
            return value

    def _grow(self) -> None:
        """Doubles the window past the value being read, so that a large value is decoded a few
        times over, not once per block."""
        held = len(self._text) - self._at
        if held > self._max:
            raise TooLarge(self._too_large())
        self._read(max(BLOCK_CHARS, held))

    def _too_large(self) -> str:
        return f"a value longer than {self._max} characters, from {self._where(self._at)}"

    def _read(self, chars: int) -> None:
        if self._at:
            self._lines += self._text.count("\n", 0, self._at)
            newline = self._text.rfind("\n", 0, self._at)
            if newline >= 0:
                self._line_start = self._base + newline + 1
            self._base += self._at
            self._text = self._text[self._at:]
            self._at = 0
        more = self._file.read(chars)
        self._eof = not more
        self._text += more

    def _where(self, at: int) -> str:
        newline = self._text.rfind("\n", 0, at)
        line = self._lines + self._text.count("\n", 0, at) + 1
        column = at - newline if newline >= 0 else self._base + at - self._line_start + 1
        return f"line {line} column {column} (char {self._base + at})"

    def _syntax(self, message: str, at: int | None = None) -> JsonSyntaxError:
        return JsonSyntaxError(f"{message}: {self._where(self._at if at is None else at)}")
