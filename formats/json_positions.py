"""Where a value sits in a JSON text: the line of the value at a path of keys and indexes, so
that an error in an uploaded file can name its line. Used only when something is wrong, on a
body that is already known to parse.

It walks the bytes rather than decoding values: `json`'s decoder holds the GIL for as long as
one value takes (27 ms for a 16 MB string, more for a large array), and this runs in a worker
while the event loop waits for the GIL. Every step here is bounded (`string_end`, `_SCALAR`)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from formats.json_reading import string_end

_RUN = 65536
_WHITESPACE = re.compile(rb"[ \t\n\r]{0,%d}" % _RUN)
# What a container holds that matters for finding its end.
_BRACKET_OR_QUOTE = re.compile(rb'["\[\]{}]')
# A number, true, false or null.
_SCALAR = re.compile(rb"[^,:\]}\s]{0,%d}" % _RUN)
_QUOTE = 0x22


def _run_end(pattern: re.Pattern[bytes], body: bytes, position: int) -> int:
    """Past the run of what `pattern` matches (at most 64 KB at a time) from `position`."""
    while True:
        found = pattern.match(body, position)
        end = found.end() if found else position
        if end - position < _RUN:
            return end
        position = end


def _skip(body: bytes, position: int) -> int:
    return _run_end(_WHITESPACE, body, position)


def _value_end(body: bytes, position: int) -> int:
    """Just past the value that starts at `position`."""
    first = body[position:position + 1]
    if first == b'"':
        return string_end(body, position) or len(body)
    if first not in (b"[", b"{"):
        return _run_end(_SCALAR, body, position)
    depth = 0
    while True:
        found = _BRACKET_OR_QUOTE.search(body, position, position + _RUN)
        if found is None:
            if position + _RUN >= len(body):
                return len(body)
            position += _RUN
            continue
        mark = body[found.start()]
        if mark == _QUOTE:
            position = string_end(body, found.start()) or len(body)
            continue
        depth += 1 if mark in b"[{" else -1
        position = found.end()
        if depth == 0:
            return position


def _key_is(body: bytes, start: int, end: int, key: str) -> bool:
    # A key's literal is at most six bytes per character (`\u00e9`) and its quotes: a longer one
    # cannot be `key`, and is never decoded.
    return end - start <= 6 * len(key) + 2 and json.loads(body[start:end]) == key


def _next_item(body: bytes, position: int) -> int:
    """From the value at `position`, the start of the container's next item (or its closing
    bracket)."""
    position = _skip(body, _value_end(body, position))
    if position < len(body) and body[position] == ord(","):
        position = _skip(body, position + 1)
    return position


def _find_member(body: bytes, position: int, key: str) -> int | None:
    """In the object at `position`, the start of `key`'s value (the last one, as json.loads keeps)."""
    found = None
    position = _skip(body, position + 1)
    while position < len(body) and body[position] != ord("}"):
        name_end = string_end(body, position) or len(body)
        matches = _key_is(body, position, name_end, key)
        position = _skip(body, _skip(body, name_end) + 1)  # past the colon
        if matches:
            found = position
        position = _next_item(body, position)
    return found


def _find_element(body: bytes, position: int, index: int) -> int | None:
    position = _skip(body, position + 1)
    current = 0
    while position < len(body) and body[position] != ord("]"):
        if current == index:
            return position
        position = _next_item(body, position)
        current += 1
    return None


def line_of(body: bytes, path: Sequence[str | int]) -> int:
    """The 1-based line of the value at `path`; where the path stops matching (a missing key),
    the line of the deepest value it reached."""
    position = _skip(body, 0)
    if body.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark, which json.loads accepts
        position = _skip(body, 3)
    for step in path:
        if position >= len(body):
            break
        opening = body[position:position + 1]
        if opening == b"{" and isinstance(step, str):
            found = _find_member(body, position, step)
        elif opening == b"[" and isinstance(step, int):
            found = _find_element(body, position, step)
        else:
            found = None
        if found is None:
            break
        position = found
    return body.count(b"\n", 0, position) + 1
