"""The bounds every JSON body is read within (formats.json_reading, web.json_input) and the capped list of
validation errors (web.errors): pure rules, tested without a service."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, ConfigDict

from formats.json_reading import (
    MAX_OBJECT_KEYS,
    JsonLimits,
    JsonRefused,
    parse_json,
    value_bound,
    values_outside_strings,
)
from web.errors import MAX_LISTED_ERRORS, ApiError, validate
from web.json_input import read_json_body

SMALL = JsonLimits(max_values=100)


def python_values(value: object) -> int:
    """What json.loads built: every value, key and container."""
    if isinstance(value, list):
        return 1 + sum(python_values(v) for v in value)
    if isinstance(value, dict):
        return 1 + len(value) + sum(python_values(v) for v in value.values())
    return 1


@pytest.mark.parametrize("text", ['[1,2,[3,{"a":[]}]]', '{"a":1,"b":{"c":[{},{},{}]}}', '"x"', "[[[[]]]]",
                                  '{"k":"a,b:c[d{e"}', '[1,"\\"",2]'])
def test_the_bound_is_never_below_what_json_builds(text: str) -> None:
    built = python_values(json.loads(text))
    assert value_bound(text.encode()) + 1 >= built
    assert values_outside_strings(text.encode(), 10**9) >= built


def test_commas_inside_strings_do_not_count_outside_them() -> None:
    body = json.dumps({"notes": "," * 10_000}).encode()
    assert value_bound(body) > 10_000
    assert values_outside_strings(body, 10**9) == 4
    assert parse_json(body, SMALL) == {"notes": "," * 10_000}


@pytest.mark.parametrize("body", [b"[" + b"1," * 100 + b"1]", b"[" + b"[]," * 50 + b"[]]",
                                  b'{"a":' * 60 + b"1" + b"}" * 60])
def test_a_body_with_more_values_than_its_route_takes_is_refused_before_parsing(body: bytes) -> None:
    with pytest.raises(JsonRefused, match="more than 100 JSON values"):
        parse_json(body, SMALL)


def test_an_object_with_more_keys_than_any_model_has_fields_is_refused() -> None:
    many = {f"k{i}": 1 for i in range(MAX_OBJECT_KEYS + 1)}
    with pytest.raises(JsonRefused, match=f"more than {MAX_OBJECT_KEYS} keys"):
        parse_json(json.dumps(many).encode(), JsonLimits(max_values=10_000))
    assert len(parse_json(json.dumps(dict(list(many.items())[:-1])).encode(), JsonLimits(max_values=10_000))) == 64


def test_a_string_that_never_closes_is_scanned_once() -> None:
    # `"` then a million escaped quotes: a scan that restarts at each quote would be quadratic
    # (hours); this one reads each byte once, and json.loads then refuses the body.
    body = b'["' + b'\\"' * 1_000_000 + b",1" * 50
    assert values_outside_strings(body, 10**9) == 1 + value_bound(b"[")  # the array; the string never ends
    with pytest.raises(ValueError):
        parse_json(body, SMALL)


def test_the_route_answer_for_each_refusal_is_a_4xx() -> None:
    with pytest.raises(ApiError) as refused:
        read_json_body(b"[" + b"0," * 30_000 + b"0]", "application/json")
    assert refused.value.status == 413
    with pytest.raises(ApiError) as not_json:
        read_json_body(b"[" * 5000, "application/json")
    assert (not_json.value.status, not_json.value.message) == (400, "Request body is not valid JSON")
    assert read_json_body(b"  \n", "text/plain") is None


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str


def test_validation_errors_list_the_first_twenty_and_count_all() -> None:
    with pytest.raises(ApiError) as failed:
        validate(Model, {"name": "x", **{f"k{i}": 1 for i in range(60)}})
    error = failed.value
    assert error.status == 400 and len(error.errors or []) == MAX_LISTED_ERRORS
    assert error.error_count == 60 and (error.errors or [])[0].field == "k0"


def test_a_few_validation_errors_are_all_listed_without_a_count() -> None:
    with pytest.raises(ApiError) as failed:
        validate(Model, {"name": 1, "extra": 2})
    assert [e.field for e in failed.value.errors or []] == ["name", "extra"]
    assert failed.value.error_count is None


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_json_that_is_not_utf8_is_refused_since_its_bytes_cannot_be_counted(encoding: str) -> None:
    # In UTF-16 the bytes of U+2C22 are `"` and `,`: a count of bytes would be fooled.
    with pytest.raises(ValueError, match="UTF-8"):
        parse_json("[0,0,0]".encode(encoding), SMALL)
    assert parse_json("\ufeff[0,0,0]".encode("utf-8"), SMALL) == [0, 0, 0]


def test_a_null_body_is_refused_as_any_other_body_that_is_not_an_object() -> None:
    """No body at all is "no fields"; `null` is a body, and not an object."""
    assert read_json_body(b"", "application/json") is None
    with pytest.raises(ApiError) as refused:
        read_json_body(b" null ", "application/json")
    assert (refused.value.status, refused.value.message) == (400, "Invalid parameters")
    assert [error.field for error in refused.value.errors or []] == ["body"]
