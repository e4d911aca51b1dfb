"""JSON read within bounds: the one place where a body (a request's, or an account file) becomes
Python values.

Python's `json` is linear in the body, but what it builds is not a fixed multiple of it: `[[],[],...]`
makes a 64-byte list of every three bytes, and a list of tiny items becomes as many validation
errors later. So before anything is parsed, the values a body can hold are counted, and a body
with more than its reader allows is refused; an object with more keys than any request model has
fields is refused while it is parsed. What remains is parsed by `json` and validated by pydantic
in time and memory proportional to the limit. Pure (no service state, no HTTP): a large body is
read in a worker thread (`ApiHandler.off_the_loop`), and no single step holds the GIL for long.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from formats.problems import TooLarge

# No request model has more fields than this (the largest, a reading status, has 13).
MAX_OBJECT_KEYS = 64
# The counts below run over this many bytes at a time, so that no single call holds the GIL long.
SCAN_PIECE = 1 << 20
# Part of a string literal's inside, at most 1 MB (4,096 runs of at most 256 bytes, or escapes):
# a whole 16 MB literal in one match held the GIL for 40 ms, and the event loop with it.
# Possessive, so nothing is ever scanned twice.
_STRING_PIECE = re.compile(rb'(?:[^"\\]{1,256}+|\\.){0,4096}+', re.DOTALL)
_STRUCTURAL = (b",", b":", b"[", b"{")


@dataclass(frozen=True)
class JsonLimits:
    """What one route's JSON body may hold: values (every number, string, literal, key, array
    and object counts one)."""

    max_values: int



class JsonRefused(TooLarge):
    """The body is JSON, or may be, but holds more than its reader takes; the message says what."""


class _TooManyKeys(Exception):
    pass


def value_bound(body: bytes, start: int = 0, end: int | None = None) -> int:
    """At least as many as the values `json.loads(body[start:end])` would build, at C speed:
    every value but the first follows a comma or a colon or opens its container, and every
    container counts itself. Characters inside strings count too, so this can be far above the
    truth (prose with commas), never below it."""
    end = len(body) if end is None else end
    total = 0
    for piece in range(start, end, SCAN_PIECE):
        stop = min(end, piece + SCAN_PIECE)
        commas_and_colons = body.count(b",", piece, stop) + body.count(b":", piece, stop)
        containers = body.count(b"[", piece, stop) + body.count(b"{", piece, stop)
        total += commas_and_colons + 2 * containers
    return total


def string_end(body: bytes, opening: int) -> int | None:
    """Just past the string literal whose `"` is at `opening`, or None for one that never closes
    (`json` stops there too). Linear, and no call holds the GIL for more than a 1 MB piece."""
    position = opening + 1
    while True:
        piece = _STRING_PIECE.match(body, position)  # {0,...}: always a match, perhaps empty
        end = piece.end() if piece else position
        if body[end:end + 1] == b'"':
            return end + 1
        if end == position:  # the end of the body, or a backslash that ends it
            return None
        position = end


def values_outside_strings(body: bytes, stop_above: int) -> int:
    """`value_bound` without what string literals hold: exact enough to decide, linear (each
    byte is looked at by one scan), and it stops counting once past `stop_above`. A string that
    never closes ends the count there: `json` stops at it too."""
    total = 1
    position = 0
    while total <= stop_above:
        opening = body.find(b'"', position)
        if opening < 0:
            return total + value_bound(body, position)
        total += value_bound(body, position, opening)
        closing = string_end(body, opening)
        if closing is None:
            return total
        position = closing
    return total


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len(pairs) > MAX_OBJECT_KEYS:
        raise _TooManyKeys
    return dict(pairs)


def refuse_json_constant(name: str) -> Any:
    """For `json.loads(parse_constant=...)`: `NaN` and `Infinity` are not JSON."""
    raise ValueError(f"{name} is not JSON")


def parse_json(body: bytes, limits: JsonLimits) -> Any:
    """The body's value, or JsonRefused past the limits; `json.JSONDecodeError` (a ValueError),
    UnicodeDecodeError or RecursionError (nesting) for what is not JSON."""
    # JSON between systems is UTF-8 (RFC 8259, 8.1), and only there is every byte below 0x80 the
    # character it looks like: in UTF-16 a `"` or `,` byte can be half of another character, and
    # the counts below would be wrong.
    if json.detect_encoding(body) not in ("utf-8", "utf-8-sig"):
        raise ValueError("JSON must be UTF-8")
    if value_bound(body) + 1 > limits.max_values and values_outside_strings(body, limits.max_values) > limits.max_values:
        raise JsonRefused(f"Request body holds more than {limits.max_values} JSON values")
    try:
        return json.loads(body, parse_constant=refuse_json_constant, object_pairs_hook=_object)
    except _TooManyKeys:
        raise JsonRefused(f"Request body has an object with more than {MAX_OBJECT_KEYS} keys") from None
