"""Where a value sits in a JSON text: the line of the value at a path of keys and indexes, so
that an error in an uploaded file can name its line. Used only when something is wrong, on a
text that is already known to parse."""

from __future__ import annotations

import json
from collections.abc import Sequence

_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\n\r"


def _skip(text: str, position: int) -> int:
    while position < len(text) and text[position] in _WHITESPACE:
        position += 1
    return position


def _value_end(text: str, position: int) -> int:
    return _DECODER.raw_decode(text, position)[1]


def _find_member(text: str, position: int, key: str) -> int | None:
    """In the object at `position`, the start of `key`'s value (the last one, as json.loads keeps)."""
    found = None
    position = _skip(text, position + 1)
    while position < len(text) and text[position] != "}":
        # scanstring is json.decoder's string reader; typeshed leaves it out of the module's stub.
        name, position = json.decoder.scanstring(text, position + 1)  # type: ignore[attr-defined]
        position = _skip(text, _skip(text, position) + 1)  # past the colon
        if name == key:
            found = position
        position = _skip(text, _value_end(text, position))
        if position < len(text) and text[position] == ",":
            position = _skip(text, position + 1)
    return found


def _find_element(text: str, position: int, index: int) -> int | None:
    position = _skip(text, position + 1)
    current = 0
    while position < len(text) and text[position] != "]":
        if current == index:
            return position
        position = _skip(text, _value_end(text, position))
        if position < len(text) and text[position] == ",":
            position = _skip(text, position + 1)
        current += 1
    return None


def line_of(text: str, path: Sequence[str | int]) -> int:
    """The 1-based line of the value at `path`; where the path stops matching (a missing key),
    the line of the deepest value it reached."""
    position = _skip(text, 0)
    for step in path:
        if position >= len(text):
            break
        if text[position] == "{" and isinstance(step, str):
            found = _find_member(text, position, step)
        elif text[position] == "[" and isinstance(step, int):
            found = _find_element(text, position, step)
        else:
            found = None
        if found is None:
            break
        position = found
    return text.count("\n", 0, position) + 1
