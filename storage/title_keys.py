"""The key a title is matched by when a file names a series by title instead of an id.

Unicode compatibility normalization (NFKC: full-width letters, ligatures), case folding, then
without punctuation, spacing and control characters: "Yotsuba&!", "YOTSUBA & !" and
"ｙｏｔｓｕｂａ＆！" share the key "yotsuba". Symbols such as "×" stay: they are part of a name.
"""

from __future__ import annotations

import unicodedata

# The longest name or alias a catalog series may have (`Text` in storage.catalog): a longer
# title matches none.
MAX_TITLE_CHARACTERS = 1000
# Compatibility normalization writes at most 18 characters for one (U+FDFA), and case folding
# of what it writes adds none past that: the longest key a catalog title can have.
MAX_KEY_CHARACTERS = 18 * MAX_TITLE_CHARACTERS


def title_key(title: str) -> str:
    folded = unicodedata.normalize("NFKC", title).casefold()
    # Case folding can produce characters NFKC would still change (e.g. "ß" -> "ss" is fine, but
    # some folds are not NFKC-stable), so normalize once more.
    folded = unicodedata.normalize("NFKC", folded)
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] not in "PZC")


def title_keys(*titles: str) -> list[str]:
    """The distinct non-empty keys of a series' name and aliases, sorted (stored as `match_titles`)."""
    return sorted({key for key in map(title_key, titles) if key})
