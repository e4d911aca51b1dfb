"""A declared path parameter (web.openapi.PathParameter): which values its schema's `pattern`,
`enum` and `maxLength` let through to the route."""

from __future__ import annotations

from web.openapi import PathParameter

REFUSAL = (400, "Invalid parameter")


def declared(**schema: object) -> PathParameter:
    return PathParameter(schema={"type": "string", **schema}, refusal=REFUSAL)


def test_the_pattern_must_match_the_whole_value() -> None:
    digits = declared(pattern="[0-9]+")
    assert digits.accepts("123")
    assert not digits.accepts("12a") and not digits.accepts("a12") and not digits.accepts("")
    assert not digits.accepts("12\n")


def test_an_anchored_pattern_works_the_same() -> None:
    assert declared(pattern="^[0-9a-f]{24}$").accepts("0123456789abcdef01234567")
    assert not declared(pattern="^[0-9a-f]{24}$").accepts("0123456789abcdef0123456")


def test_only_a_value_of_the_enum_is_accepted() -> None:
    size = declared(enum=["scaled", "high"])
    assert size.accepts("scaled") and size.accepts("high")
    assert not size.accepts("Scaled") and not size.accepts("scaled ") and not size.accepts("")


def test_max_length_counts_characters_and_is_inclusive() -> None:
    short = declared(maxLength=3)
    assert short.accepts("abc") and short.accepts("äöü") and short.accepts("")
    assert not short.accepts("abcd")


def test_every_constraint_must_hold() -> None:
    both = declared(pattern="[a-z]+", maxLength=4)
    assert both.accepts("abcd")
    assert not both.accepts("abcde")  # the pattern holds, the length does not
    assert not both.accepts("ab1")  # the length holds, the pattern does not


def test_without_constraints_any_text_is_accepted() -> None:
    free = declared()
    assert free.accepts("") and free.accepts("anything / at all") and free.accepts("x" * 10_000)


def test_a_refusal_answers_the_declared_status_and_names_the_field_with_a_reason() -> None:
    plain = declared().refused("id")
    assert (plain.status, plain.message, plain.errors) == (400, "Invalid parameter", None)
    reasoned = PathParameter(schema={}, refusal=(404, "Not found"), reason="must be a number").refused("id")
    assert (reasoned.status, reasoned.message) == (404, "Not found")
    assert reasoned.errors is not None
    assert [(error.field, error.message) for error in reasoned.errors] == [("id", "must be a number")]


def test_a_catalog_id_fits_the_databases_64_bit_integers() -> None:
    # Every route that names a series or a volume in its path declares CATALOG_ID (the hostile
    # sweep holds them to it): what it lets through is at most 18 digits, so no id the database
    # cannot hold as a 64-bit integer reaches a query.
    from handlers.application import all_routes
    from handlers.series_scope import CATALOG_ID

    largest = "9" * 18
    assert CATALOG_ID.accepts(largest) and int(largest) < 2 ** 63
    for refused in ("9" * 19, str(2 ** 63), "1" + "0" * 18, "0", "01", "-1", "1e3", ""):
        assert not CATALOG_ID.accepts(refused), refused
    catalog_paths = [route for route in all_routes()
                     if route.path.startswith(("/series/volumes/", "/volumes/toggle-collection/", "/user/collection/add/",
                                               "/user/reading-status/", "/user/series-rating/"))]
    assert len(catalog_paths) == 13
    assert all(route.path_parameters == {"id": CATALOG_ID} for route in catalog_paths)
