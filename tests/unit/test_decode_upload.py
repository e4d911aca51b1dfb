"""decode_upload works a piece at a time (so that no call holds the GIL for the whole upload);
it must take and refuse exactly what decoding the whole text at once does."""

from __future__ import annotations

import base64
import binascii
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import imaging
from imaging import ImageRejected, decode_upload

DATA_URL = re.compile(r"^data:[\w.+-]+/[\w.+-]+(?:;[\w.+-]+=[\w.+-]+)*;base64,", re.IGNORECASE)


def whole(text: str, max_bytes: int) -> bytes:
    """The rule, stated on the whole text at once: strip, take off a data URL's prefix, drop
    whitespace, refuse empty or too long before decoding, take the URL-safe alphabet, pad, decode."""
    stripped = text.strip()
    prefix = DATA_URL.match(stripped[:imaging.DATA_URL_PREFIX_MAX])
    payload = "".join((stripped[prefix.end():] if prefix else stripped).split())
    if not payload:
        raise ImageRejected("Image is empty")
    if len(payload) * 3 // 4 > max_bytes + 3:
        raise ImageRejected("too large")
    payload = payload.replace("-", "+").replace("_", "/")
    payload += "=" * (-len(payload) % 4)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageRejected("Image is not valid base64") from None
    if len(data) > max_bytes:
        raise ImageRejected("too large")
    return data


def outcome(decode: object, text: str, max_bytes: int) -> object:
    try:
        return decode(text, max_bytes)  # type: ignore[operator]
    except ImageRejected as rejected:
        return "too large" if "larger than" in str(rejected) or str(rejected) == "too large" else str(rejected)


PARTS = st.sampled_from(["QUJD", "QQ", "QQ==", "QUI=", "=", "==", "A", "-_", "+/", " ", "\n", "\t", "\r\n",
                         "\x1c", "\u2003", "!", "é", "data:image/png;base64,", "DATA:image/png;a=b;base64,",
                         "data:x", ",", "abcd" * 3, "=====", ";a=b" * 20, "x" * 90])


@settings(max_examples=600, deadline=None)
@given(st.lists(PARTS, max_size=24).map("".join), st.sampled_from([4, 8, 12, 1 << 20]),
       st.sampled_from([1, 3, 10, 1000]))
def test_the_pieces_take_and_refuse_what_the_whole_text_does(text: str, piece: int, max_bytes: int) -> None:
    original = imaging.PIECE
    imaging.PIECE = piece
    try:
        assert outcome(decode_upload, text, max_bytes) == outcome(whole, text, max_bytes)
    finally:
        imaging.PIECE = original


@pytest.mark.parametrize("text", ["QQ==QQ==", "QQ== QQ==", "QUJD\nQQ==\nQUJD"])
def test_padding_before_more_data_is_refused_wherever_a_piece_ends(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for piece in (4, 8, 1 << 20):
        monkeypatch.setattr(imaging, "PIECE", piece)
        with pytest.raises(ImageRejected, match="not valid base64"):
            decode_upload(text, 100)


def test_a_line_wrapped_data_url_of_megabytes_decodes_to_its_bytes() -> None:
    data = bytes(range(256)) * 12_000
    text = "  data:image/png;base64," + base64.encodebytes(data).decode() + "\n\n"
    assert decode_upload(text, len(data)) == data


@pytest.mark.parametrize("text", ["data:a/b" + ";a=b" * 2_796_000, "data:a/" + "b" * 11_184_000,
                                  "QQ" + "=" * 11_000_000, "QUJD=" + "A" * 11_000_000,
                                  "QUJD" * 2_700_000 + "!"])
def test_hostile_megabytes_are_read_a_piece_at_a_time(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each was one call over the whole text (a data URL prefix that never ends held the GIL
    1.5 s here, a run of "=" 14 ms): the prefix is looked for in its first characters only, and
    no base64 decode is given more than a piece."""
    looked_at: list[int] = []
    decoded: list[int] = []
    pattern, from_base64 = imaging._DATA_URL, imaging._from_base64

    class Spy:
        @staticmethod
        def match(text: str, start: int, end: int) -> object:
            looked_at.append(end - start)
            return pattern.match(text, start, end)

    def spied(quanta: str) -> bytes:
        decoded.append(len(quanta))
        return from_base64(quanta)

    monkeypatch.setattr(imaging, "_DATA_URL", Spy)
    monkeypatch.setattr(imaging, "_from_base64", spied)
    with pytest.raises(ImageRejected):
        decode_upload(text, 8 * 1024 * 1024)
    assert looked_at == [imaging.DATA_URL_PREFIX_MAX]
    assert decoded and max(decoded) <= imaging.PIECE + 8
