"""The words a catalog search matches: a series' titles and a search text, folded and split alike.

Folding: Unicode compatibility normalization (full-width letters, ligatures), case folding, and
accents taken off Latin, Greek and Cyrillic letters ("Pokémon", "POKEMON" and "ｐｏｋｅｍｏｎ" fold to
"pokemon"); kana keep their voicing marks ("が" is not "か"). A word is a run of letters and
digits; anything else separates words ("Re:Zero" is "re" and "zero", "Yotsuba&!" is "yotsuba").

A search word matches a title word it begins: "drag" matches "Dragon", not "Snapdragon".
Chinese, Japanese and Korean write without spaces, so a run of those scripts also counts every
one of its suffixes (the first MAX_SUFFIXES) as a word: "巨人" matches "進撃の巨人" anywhere in it.
Words are kept to their first MAX_WORD_CHARACTERS characters, on both sides, and a search to its
MAX_SEARCH_WORDS longest words: each word costs the walk of the series of every title word it
begins, and the longest words narrow the most.
"""

from __future__ import annotations

import re
import unicodedata

MAX_WORD_CHARACTERS = 32
MAX_SEARCH_WORDS = 10
# A run of a script written without spaces counts its suffixes from this many first positions:
# a longer run (a 1,000-character title would give 1,000) matches only words that start there.
MAX_SUFFIXES = 64
# Marks the first word of each title, as a word of its own: it sorts before every letter and
# digit, so a search for words never meets one, and a search can rank titles that begin with it.
TITLE_START = "\x01"

_WORD = re.compile(r"[^\W_]+")
# The combining accents of Latin, Greek and Cyrillic letters, as compatibility decomposition
# writes them; kana voicing marks (U+3099, U+309A) and the vowel signs of other scripts are not
# among them.
_ACCENTS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
# Han, kana, Hangul and Bopomofo, in their compatibility-normalized forms.
_WITHOUT_SPACES = re.compile("[\u1100-\u11ff\u2e80-\u2fdf\u3040-\u31ff\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f"
                             "\uac00-\ud7ff\uf900-\ufaff\U00020000-\U0003134f]")


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    return unicodedata.normalize("NFKC", _ACCENTS.sub("", decomposed))


def title_words(*titles: str) -> set[str]:
    """The words a series' name and aliases are found by, with TITLE_START and each title's first."""
    words: set[str] = set()
    for title in titles:
        runs = _WORD.findall(fold(title))
        if runs:
            words.add(TITLE_START + runs[0][:MAX_WORD_CHARACTERS])
        for run in runs:
            if _WITHOUT_SPACES.search(run):
                words.update(run[start:start + MAX_WORD_CHARACTERS] for start in range(min(len(run), MAX_SUFFIXES)))
            else:
                words.add(run[:MAX_WORD_CHARACTERS])
    return words


def search_words(text: str) -> list[str]:
    """The distinct words of a search text (its MAX_SEARCH_WORDS longest), in the order they came:
    a series matches when each begins one of its title words. Empty when the text has no letter
    or digit."""
    words = list(dict.fromkeys(run[:MAX_WORD_CHARACTERS] for run in _WORD.findall(fold(text))))
    if len(words) > MAX_SEARCH_WORDS:
        kept = set(sorted(words, key=len, reverse=True)[:MAX_SEARCH_WORDS])
        words = [word for word in words if word in kept]
    return words
