"""Entity tags and the conditional request headers (RFC 9110, 8.8.3 and 13.1): the tag of an
answer's bytes, and whether `If-None-Match` or `If-Match` holds against an entry's current tag.
Pure, so that the rules are tested without a server."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from pydantic import BaseModel

from storage.outcome import WriteOutcome
from web.errors import ApiError

PRECONDITION_FAILED = "Precondition failed"
IF_MATCH = "If-Match"
IF_NONE_MATCH = "If-None-Match"
# One entity-tag of a list (RFC 9110, 8.8.3): `"…"` or `W/"…"`, the quoted part printable ASCII
# (or obs-text) without a quote. Anything else in the header is not a tag and matches nothing.
# Linear: a quoted run ends at the next quote (or at a character no tag holds), so no character is
# read twice.
_TAG = re.compile(r'(W/)?"[\x21\x23-\x7e\x80-\xff]*"')
_WEAK = "W/"


def entity_tag(parts: Iterable[bytes]) -> str:
    """The strong tag of an answer's bytes: a quoted 128-bit prefix of their SHA-256. Linear in
    them; a caller with a large answer runs it off the event loop."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return f'"{digest.hexdigest()[:32]}"'


def answer_json(answer: BaseModel | None) -> str:
    """A response model as its answer's JSON (compact, UTF-8; None is `null`). pydantic's own
    serializer writes it in one pass, without the dict that `model_dump` builds first: a fifth of
    the time (issue 32, docs/performance.md)."""
    return "null" if answer is None else answer.model_dump_json(by_alias=True)


def tag_of_answer(answer: BaseModel) -> str:
    """The tag of a GET that answers `answer` (`ApiHandler.write_model`, through `answer_json`):
    what If-Match of a write to that entry is compared with."""
    return entity_tag([answer_json(answer).encode()])


def _listed(header: str) -> list[tuple[bool, str]]:
    """The header's tags as (weak, opaque tag with its quotes)."""
    return [(match.group(1) is not None, match.group(0).removeprefix(_WEAK)) for match in _TAG.finditer(header)]


def none_match_fails(header: str | None, current: str | None) -> bool:
    """Whether `If-None-Match` is false for an answer whose tag is `current` (None: there is no
    answer), i.e. whether a GET answers 304: `*` names any answer, and a listed tag names one if
    it is the same by the weak comparison (RFC 9110, 13.1.2: `W/"x"` is `"x"`)."""
    if header is None or current is None:
        return False
    if header.strip() == "*":
        return True
    opaque = current.removeprefix(_WEAK)
    return any(tag == opaque for _, tag in _listed(header))


def if_match_holds(header: str | None, current: str | None) -> bool:
    """Whether `If-Match` holds for an entry whose tag is `current` (None: there is no entry):
    no header always holds; `*` holds when there is an entry; a list holds when one of its tags
    is `current` by the strong comparison (RFC 9110, 13.1.1: a weak tag never matches)."""
    if header is None:
        return True
    if current is None:
        return False
    if header.strip() == "*":
        return True
    return any(not weak and tag == current for weak, tag in _listed(header))


def asks_any(header: str | None) -> bool:
    """Whether `If-Match` is `*`: the write asks only that the entry exist, not that it be unchanged."""
    return header is not None and header.strip() == "*"


def require_done(outcome: WriteOutcome, missing: str) -> None:
    """An update or delete of one entry that did not happen: 404 `missing` when there was no
    entry, 412 when a conditional one found it changed since its If-Match was checked."""
    if outcome is WriteOutcome.NOT_FOUND:
        raise ApiError(404, missing)
    if outcome is WriteOutcome.CHANGED:
        raise ApiError(412, PRECONDITION_FAILED)
