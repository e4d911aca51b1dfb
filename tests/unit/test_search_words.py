"""How titles and search texts become the words a catalog search matches (storage.search_words)."""

from __future__ import annotations

from storage.search_words import (
    MAX_SEARCH_WORDS,
    MAX_SUFFIXES,
    MAX_WORD_CHARACTERS,
    TITLE_START,
    fold,
    search_words,
    title_words,
)


def plain(words: set[str]) -> set[str]:
    return {word for word in words if not word.startswith(TITLE_START)}


def test_folding_takes_off_case_accents_and_width() -> None:
    assert fold("Pokémon") == fold("POKEMON") == fold("ｐｏｋｅｍｏｎ") == "pokemon"
    assert fold("Straße") == "strasse"
    assert fold("Ça") == "ca" and fold("Ñandú") == "nandu" and fold("Ёлка") == "елка"


def test_kana_keep_their_voicing_marks() -> None:
    assert fold("が") == "が" != fold("か")
    assert fold("ｶﾞ") == "ガ"  # half-width katakana, composed


def test_words_are_runs_of_letters_and_digits() -> None:
    assert plain(title_words("Re:Zero − Starting Life in Another World")) == {
        "re", "zero", "starting", "life", "in", "another", "world"}
    assert plain(title_words("Yotsuba&!")) == {"yotsuba"}
    assert plain(title_words("Spy×Family", "20th_Century Boys")) == {"spy", "family", "20th", "century", "boys"}


def test_each_title_marks_its_first_word() -> None:
    assert title_words("Attack on Titan", "進撃の巨人") >= {TITLE_START + "attack", TITLE_START + "進撃の巨人"}
    assert TITLE_START + "on" not in title_words("Attack on Titan")


def test_scripts_without_spaces_count_every_suffix() -> None:
    assert plain(title_words("進撃の巨人")) == {"進撃の巨人", "撃の巨人", "の巨人", "巨人", "人"}
    assert plain(title_words("나 혼자만 레벨업")) == {"나", "혼자만", "자만", "만", "레벨업", "벨업", "업"}
    long_run = "漢" * 200
    assert len(plain(title_words(long_run))) == 1  # one distinct suffix per start, each cut to the word limit
    assert len(title_words("".join(chr(0x4E00 + n) for n in range(200)))) == MAX_SUFFIXES + 1


def test_words_are_cut_to_the_word_limit() -> None:
    long_word = "a" * 100
    assert plain(title_words(long_word)) == {"a" * MAX_WORD_CHARACTERS}
    assert search_words(long_word) == ["a" * MAX_WORD_CHARACTERS]


def test_a_search_text_is_folded_and_split_alike() -> None:
    assert search_words("  ATTACK on  tit ") == ["attack", "on", "tit"]
    assert search_words("attack attack") == ["attack"]
    assert search_words("Pokémon!") == ["pokemon"]
    assert search_words("!!! & ...") == []
    assert search_words("巨人") == ["巨人"]


def test_a_search_keeps_its_longest_words() -> None:
    words = search_words("a bb ccc dddd eeeee ffffff g hh iii jjjj kkkkk llllll")
    assert len(words) == MAX_SEARCH_WORDS
    # The two one-letter words go; the others keep their order.
    assert words == ["bb", "ccc", "dddd", "eeeee", "ffffff", "hh", "iii", "jjjj", "kkkkk", "llllll"]
