"""The one place that maps language codes and names: catalog languages, `user_lang`, fallbacks."""

from __future__ import annotations

from typing import TypeVar

_Default = TypeVar("_Default", str, None)

# code -> English name, as the catalog spells languages.
LANGUAGES: dict[str, str] = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "it": "Italian",
    "ja": "Japanese",
    "ko": "Korean",
    "zh": "Chinese",
    "pt": "Portuguese",
    "ru": "Russian",
    "pl": "Polish",
    "nl": "Dutch",
}
FALLBACK = "en"

_ALIASES: dict[str, str] = {
    **{code: code for code in LANGUAGES},
    **{name.lower(): code for code, name in LANGUAGES.items()},
    # ISO 639-2 codes, which the settings use for Japanese and Korean.
    "eng": "en", "ger": "de", "deu": "de", "fre": "fr", "fra": "fr", "spa": "es", "ita": "it",
    "jpn": "ja", "kor": "ko", "chi": "zh", "zho": "zh", "por": "pt", "rus": "ru", "pol": "pl",
    "dut": "nl", "nld": "nl",
}


def language_code(value: str | None) -> str | None:
    """`de`, `ger`, `German`, `GERMAN` -> `de`; anything unknown -> None."""
    if value is None:
        return None
    return _ALIASES.get(value.strip().lower())


def requested_language(user_lang: str | None) -> str:
    """The code a list shows titles in: the requested language if known, else English."""
    return language_code(user_lang) or FALLBACK


def localized(texts: dict[str, str] | None, code: str | None, default: _Default) -> str | _Default:
    """The requested language, then English, then `default` (the series name)."""
    texts = texts or {}
    if code and texts.get(code):
        return texts[code]
    return texts.get(FALLBACK) or default
