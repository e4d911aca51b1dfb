"""Which usernames and passwords are valid (auth.passwords): the rules every account route applies."""

from __future__ import annotations

import pytest

from auth.passwords import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, is_valid_password, is_valid_username


@pytest.mark.parametrize("username", ["abc", "a" * 32, "Alice_01", "j.doe", "x-y-z", "___", "..."])
def test_usernames_of_3_to_32_letters_digits_and_dot_dash_underscore_are_valid(username: str) -> None:
    assert is_valid_username(username)


@pytest.mark.parametrize("username", ["", "ab", "a" * 33, "al ice", "alice!", "alice@home", "ałice", "アリス",
                                      "alice\n", "\nalice", "ali\x00ce", "alice/..", "١٢٣"])
def test_other_usernames_are_invalid(username: str) -> None:
    assert not is_valid_username(username)


def test_password_lengths_from_8_to_128_are_valid() -> None:
    assert (PASSWORD_MIN_LENGTH, PASSWORD_MAX_LENGTH) == (8, 128)
    assert is_valid_password("x" * 8)
    assert is_valid_password("x" * 128)
    assert not is_valid_password("x" * 7)
    assert not is_valid_password("x" * 129)
    assert not is_valid_password("")


def test_a_password_counts_characters_not_bytes() -> None:
    assert is_valid_password("ü" * 8)  # 16 bytes of UTF-8
    assert is_valid_password("🔑" * 128)  # 512 bytes
    assert not is_valid_password("🔑" * 7)


def test_any_characters_make_a_password_spaces_included() -> None:
    assert is_valid_password("        ")
    assert is_valid_password("päss wörd\t!")


def test_a_password_with_a_lone_surrogate_is_invalid() -> None:
    # JSON can carry "\ud800"; no UTF-8 encoder, argon2's included, takes it.
    assert not is_valid_password("password\ud800")
    assert not is_valid_password("\udfff" * 8)
