"""Finding a value's line in a JSON body (formats.json_positions) and a string literal's end
(web.json_input.string_end), both walked in bounded steps: pure rules, tested without a
service."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import pytest

from formats.json_positions import line_of
from formats.json_reading import string_end

Path = tuple[str | int, ...]
MARK = "\u2603 the value looked for"


def random_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.3:
        return rng.choice([1, -2.5e3, True, None, "x", 'a"b}', "{[", "é\n", "\\", 10**30])
    if roll < 0.65:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(["a", "b", "é", "c d", 'q"', "\\"]): random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def paths(value: Any, path: Path = ()) -> Iterator[Path]:
    if isinstance(value, list):
        for index, element in enumerate(value):
            yield path + (index,)
            yield from paths(element, path + (index,))
    elif isinstance(value, dict):
        for key, member in value.items():
            yield path + (key,)
            yield from paths(member, path + (key,))


def marked(value: Any, path: Path) -> Any:
    """`value` with the value at `path` replaced by MARK."""
    if not path:
        return MARK
    step, rest = path[0], path[1:]
    if isinstance(value, list):
        return [marked(element, rest) if index == step else element for index, element in enumerate(value)]
    return {key: marked(member, rest) if key == step else member for key, member in value.items()}


@pytest.mark.parametrize("seed", range(40))
def test_the_line_is_where_json_dumps_put_the_value(seed: int) -> None:
    # The oracle: the same document with the value replaced by a mark, written the same way;
    # the mark's line is the value's (a value starts on the line its key is on).
    rng = random.Random(seed)
    for _ in range(20):
        value = random_value(rng)
        indent = rng.choice([None, 0, 1, 3])
        ascii_only = rng.random() < 0.5
        body = json.dumps(value, indent=indent, ensure_ascii=ascii_only).encode()
        for path in paths(value):
            with_mark = json.dumps(marked(value, path), indent=indent, ensure_ascii=False)
            expected = with_mark[:with_mark.index(MARK)].count("\n") + 1
            assert line_of(body, path) == expected, (body, path)


def test_a_path_that_stops_matching_gives_the_deepest_value_reached() -> None:
    body = b'{\n "a": [\n  {"b": 1}\n ]\n}'
    assert line_of(body, ("a", 0, "missing")) == 3
    assert line_of(body, ("a", 5)) == 2
    assert line_of(body, ("nothing",)) == 1


def test_a_byte_order_mark_and_escaped_keys_are_read_as_json_reads_them() -> None:
    assert line_of(b'\xef\xbb\xbf{\n"a":\n1}', ("a",)) == 3
    assert line_of('{"é":1,\n"\\u00e9":2}'.encode(), ("é",)) == 2  # the last one, as json.loads keeps


def test_a_key_far_longer_than_the_one_looked_for_is_never_decoded() -> None:
    # 16 MB of key: decoding it would hold the GIL; its length alone says it is not "a".
    body = b'{"' + b"\\u0041" * 2_000_000 + b'": 1,\n"a": 2}'
    assert line_of(body, ("a",)) == 2


@pytest.mark.parametrize("literal", [b'""', b'"abc"', b'"a\\"b"', b'"a\\\\"', b'"\\\\\\""', b'"\xc3\xa9\\u00e9"'])
def test_a_string_ends_where_json_ends_it(literal: bytes) -> None:
    body = literal + b', "next"'
    assert string_end(body, 0) == len(literal)
    assert json.loads(body[:len(literal)]) is not None


@pytest.mark.parametrize("body", [b'"abc', b'"ab\\', b'"', b'"\\"'])
def test_a_string_that_never_closes_has_no_end(body: bytes) -> None:
    assert string_end(body, 0) is None


@pytest.mark.parametrize("inside", [b"a" * 3_000_000, b"\\n" * 1_500_000, (b"a" * 255 + b"\\\"") * 20_000])
def test_a_string_of_many_pieces_ends_where_it_closes(inside: bytes) -> None:
    # Longer than one 1 MB piece, with escapes where pieces meet.
    body = b'"' + inside + b'"'
    assert string_end(body + b"]", 0) == len(body)
    assert string_end(body[:-1], 0) is None
