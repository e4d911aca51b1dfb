"""The streaming JSON reader hands out what `json.loads` would, says what it would say of a bad
file, and reads no further than the element it hands out."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from formats import json_stream
from formats.json_stream import JsonSyntaxError, ObjectStream
from formats.problems import TooLarge, Unreadable

DOCUMENT = {
    "before": {"nested": [1, 2.5, None, True]},
    "series": [
        {"id": 12345678901234567890, "name": "Yotsuba\u3068! \U0001F600", "escaped": "a\"b\\c\nd\u00e9"},
        -0.000123e-7,
        "a string that is longer than a block",
        [[], {}, False],
    ],
    "after": "x",
}


def stream(text: str, key: str = "series", max_value_chars: int = 1_000_000) -> ObjectStream:
    return ObjectStream(io.StringIO(text), key, max_value_chars)


def read(text: str, key: str = "series") -> tuple[list[Any], Any]:
    reader = stream(text, key)
    elements = list(reader.elements())
    return elements, reader.skeleton


@pytest.fixture(params=[1, 3, 7, 64], ids=lambda n: f"block{n}")
def small_blocks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Blocks this small cut every value, number, escape and literal somewhere."""
    monkeypatch.setattr(json_stream, "BLOCK_CHARS", request.param)
    return int(request.param)


@pytest.mark.parametrize("indent", [None, 2])
def test_the_elements_and_the_rest_are_what_json_reads(small_blocks: int, indent: int | None) -> None:
    text = json.dumps(DOCUMENT, indent=indent, ensure_ascii=False)
    elements, skeleton = read(text)
    assert elements == DOCUMENT["series"]
    assert skeleton == {**DOCUMENT, "series": []}


@pytest.mark.parametrize("text", ['[1, 2]', '"text"', '{}', '{"other": {"series": [1]}}', '{"series": {"a": 1}}'])
def test_a_document_without_the_array_is_read_whole_as_the_skeleton(small_blocks: int, text: str) -> None:
    elements, skeleton = read(text)
    assert elements == [] and skeleton == json.loads(text)


@pytest.mark.parametrize("text", [
    '', '{"series": [1, 2', '{"series": [1 2]}', '{"series": [1,]}', '{"series": [1]} x', '{"series" [1]}',
    '{"series": [1], }', '{series: []}', '{"series": ["a\nb"]}', '{"series": [tru]}', '{"series": ["\\u12"]}',
    '{"series": [1.]}', '{"series": [{"a": 1 "b": 2}]}', '\n\n  {"a": 1,\n "series": [\n{"x": }]}',
])
def test_a_bad_file_gets_the_message_and_position_json_gives(small_blocks: int, text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    with pytest.raises(JsonSyntaxError) as raised:
        read(text)
    assert str(raised.value) == str(expected.value)


def test_the_first_element_is_handed_out_before_the_file_is_read_past_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(json_stream, "BLOCK_CHARS", 1024)
    file = io.StringIO('{"series": [' + ",".join(json.dumps({"id": n, "pad": "x" * 100}) for n in range(20_000)) + "]}")
    elements = ObjectStream(file, "series", 1_000_000).elements()
    assert next(elements) == {"id": 0, "pad": "x" * 100}
    assert file.tell() <= 2 * 1024  # of a file of 2.4 MB
    assert sum(1 for _ in elements) == 19_999


def test_a_value_longer_than_the_limit_is_refused_where_it_starts(small_blocks: int) -> None:
    with pytest.raises(TooLarge, match=r"longer than 50 characters, from line 2 column 2"):
        list(stream('{"series": [1,\n ["' + "x" * 60 + '"]]}', max_value_chars=50).elements())


def test_the_array_given_twice_is_refused() -> None:
    with pytest.raises(Unreadable, match="series: given twice"):
        read('{"series": [1], "series": [2]}')
