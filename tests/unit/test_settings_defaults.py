"""A user's settings as answered (handlers.schemas.settings.settings_with_defaults): every key,
defaults for what is missing, and a stored value that is no longer valid falls back alone."""

from __future__ import annotations

import pytest

from handlers.schemas.settings import SETTING_FIELDS, settings_with_defaults

DEFAULTS = {key: default for key, (_, default) in SETTING_FIELDS.items()}


def test_nothing_stored_answers_every_default() -> None:
    assert settings_with_defaults(None) == DEFAULTS
    assert settings_with_defaults({}) == DEFAULTS
    assert DEFAULTS["theme"] == "light" and DEFAULTS["collection-visibility"] == "private"


def test_stored_values_are_kept_and_the_rest_defaulted() -> None:
    stored = {"theme": "dark", "show-drag-indicator": False, "theme-accent-color": "#ABCDEF"}
    assert settings_with_defaults(stored) == {**DEFAULTS, **stored}


@pytest.mark.parametrize("key, value", [
    ("theme", "purple"),
    ("theme", None),
    ("theme-accent-color", "#abc"),
    ("theme-accent-color", "71c94e"),
    ("show-drag-indicator", "yes"),
    ("show-drag-indicator", 1),
    ("view-mode", ["grid"]),
    ("nsfw-mode", "settings.nsfw.show-everything"),
])
def test_an_invalid_stored_value_falls_back_to_its_default_and_the_others_stay(key: str, value: object) -> None:
    other = ("view-mode", "grid") if key != "view-mode" else ("theme", "dark")
    answered = settings_with_defaults({key: value, other[0]: other[1]})
    assert answered == {**DEFAULTS, other[0]: other[1]}


def test_an_unknown_stored_key_is_not_answered() -> None:
    answered = settings_with_defaults({"theme": "dark", "legacy-option": "on"})
    assert "legacy-option" not in answered and answered["theme"] == "dark"
    assert set(answered) == set(SETTING_FIELDS)


def test_a_stored_key_object_is_answered_as_its_value() -> None:
    assert settings_with_defaults({"theme": {"key": "dark"}})["theme"] == "dark"
