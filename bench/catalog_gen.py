"""`python -m bench catalog-gen --series N --volumes M --out FILE [--seed S]`: a synthetic catalog
in the import format (`server.py import-catalog FILE`), for measuring the catalog at MangaDex
scale (issue 29: 100,000 series, 1,000,000 volumes).

Names are made of words (English, romanized Japanese, Korean and Chinese, heading a Zipf-distributed
vocabulary of 20,000 made-up words), with aliases in two to five languages; types and origins in roughly the demo catalog's mix; volumes per series vary
around M / N (every series has at least one); one series in 25 is flagged `nsfw18`; slugs are
unique. The same seed gives the same file, byte for byte.

The file is written one series at a time: the generator holds one series and the volume counts
(one int a series), never the document. The importer reads it the same way (storage.catalog's
formats.catalog_file.CatalogFileReader): one pass that checks it all, one that writes it a chunk of series at a time.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

# (type, origin, weight): about the demo catalog's mix.
KINDS = (("Manga", "Japanese", 55), ("Light Novel", "Japanese", 15), ("Manhwa", "Korean", 12),
         ("Manhua", "Chinese", 6), ("Comic", "American", 7), ("Comic", "French", 5))
ENGLISH = ("Blade", "Moon", "Shadow", "Academy", "Dragon", "Heart", "Kingdom", "Hunter", "Sky", "Witch",
           "Garden", "Winter", "Star", "Knight", "Demon", "Ghost", "Tower", "Sea", "Flower", "Storm",
           "Silent", "Crimson", "Last", "Lost", "Golden", "Broken", "Eternal", "Little", "Wild", "Hidden")
JAPANESE = ("Tsuki", "Kage", "Hana", "Sora", "Yume", "Kaze", "Hoshi", "Yoru", "Kokoro", "Ryuu", "Sakura",
            "Tenshi", "Akuma", "Mizu", "Hikari", "Kuroi", "Shiroi", "Koi", "Tabi", "Mori")
KOREAN = ("Dal", "Byeol", "Haneul", "Kkot", "Baram", "Geurimja", "Sarang", "Bam", "Nara", "Sseul")
CHINESE = ("Yue", "Long", "Tian", "Hua", "Feng", "Xing", "Jian", "Shan", "Meng", "Xue")
PATTERNS = ("The {a} of the {b}", "{a} {b}", "{a} and {b}", "My {a} {b}", "{a} {b} Chronicles", "Return of the {a}")
GERMAN = {"The": "Der", "of the": "des", "and": "und", "My": "Mein", "Return of the": "Rückkehr des",
          "Chronicles": "Chroniken"}
FRENCH = {"The": "Le", "of the": "du", "and": "et", "My": "Mon", "Return of the": "Le retour du",
          "Chronicles": "Chroniques"}
ALIAS_LANGUAGES = ("German", "French", "Spanish", "Italian", "Portuguese", "Polish")
# Real titles draw on tens of thousands of words, a few of them very common: the words above head a
# Zipf-distributed vocabulary of made-up words, so that searches meet what they meet on MangaDex
# (a common word matching thousands of series, most words a handful), not 80 words shared by all.
SYLLABLES = ("ka", "ki", "ku", "ke", "ko", "sa", "shi", "su", "se", "so", "ta", "chi", "tsu", "te", "to", "na",
             "ni", "nu", "ne", "no", "ha", "hi", "fu", "he", "ho", "ma", "mi", "mu", "me", "mo", "ya", "yu", "yo",
             "ra", "ri", "ru", "re", "ro", "wa", "ga", "gi", "gu", "ge", "go", "za", "ji", "zu", "ze", "zo", "da",
             "de", "do", "ba", "bi", "bu", "be", "bo", "lin", "mar", "el", "vor", "an", "is", "ul", "ter")
VOCABULARY = 20_000
NSFW18_EVERY = 25


def volume_counts(series: int, volumes: int, rng: random.Random) -> list[int]:
    """`series` counts that sum to `volumes`, each at least 1, varying around the mean (a few
    long-running series, many short ones)."""
    if volumes < series:
        raise ValueError(f"--volumes ({volumes}) must be at least --series ({series}): every series has a volume")
    weights = [rng.lognormvariate(0, 0.8) for _ in range(series)]
    total = sum(weights)
    spare = volumes - series
    counts = [1 + int(spare * w / total) for w in weights]
    # Rounding down left a few volumes over: one each to the first series of a shuffled order.
    order = list(range(series))
    rng.shuffle(order)
    for i in order[: volumes - sum(counts)]:
        counts[i] += 1
    return counts


class Words:
    """Words drawn with Zipf weights (the n-th word 1/n as likely as the first) from `head`, then the
    made-up vocabulary (the same for every series, made from the seed)."""

    def __init__(self, head: tuple[str, ...], made_up: list[str], rng: random.Random) -> None:
        self.words = list(head) + [w for w in made_up if w not in head]
        self.cumulative = list(itertools.accumulate(1 / rank for rank in range(1, len(self.words) + 1)))
        self.rng = rng

    def sample(self, count: int) -> list[str]:
        chosen: list[str] = []
        while len(chosen) < count:
            word = self.rng.choices(self.words, cum_weights=self.cumulative)[0]
            if word not in chosen:
                chosen.append(word)
        return chosen


def made_up_words(rng: random.Random, count: int = VOCABULARY) -> list[str]:
    words: dict[str, None] = {}
    while len(words) < count:
        words["".join(rng.choices(SYLLABLES, k=rng.randint(2, 4))).capitalize()] = None
    return list(words)


def _translated(pattern: str, words: dict[str, str]) -> str:
    for english, other in sorted(words.items(), key=lambda pair: -len(pair[0])):
        pattern = pattern.replace(english, other)
    return pattern


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-") or "series"


def series_entry(series_id: int, first_volume_id: int, volume_count: int, rng: random.Random,
                 slugs: set[str], vocabularies: dict[str, Words]) -> dict[str, Any]:
    kind, origin, _ = rng.choices(KINDS, weights=[k[2] for k in KINDS])[0]
    pattern = rng.choice(PATTERNS)
    a, b = vocabularies["English"].sample(2)
    english = pattern.format(a=a, b=b)
    native_words = vocabularies.get(origin)
    native = " ".join(native_words.sample(rng.randint(2, 3))) if native_words else None
    name = native or english
    aliases = [{"title": english, "language": "English"},
               {"title": _translated(pattern, GERMAN).format(a=a, b=b), "language": "German"}]
    for language in rng.sample(ALIAS_LANGUAGES[1:], rng.randint(0, 2)):
        words = FRENCH if language == "French" else {}
        aliases.append({"title": _translated(pattern, words).format(a=a, b=b) + f" ({language[:2]})",
                        "language": language})
    if native:
        aliases.append({"title": native, "language": origin})
    slug = _slug(name)
    if slug in slugs:
        slug = f"{slug}-{series_id}"
    slugs.add(slug)
    nsfw18 = int(series_id % NSFW18_EVERY == 0)
    year = rng.randint(1970, 2024)
    volume_language = origin if origin in ("Japanese", "Korean", "Chinese", "French") else "English"
    volumes = [{
        "id": first_volume_id + n, "name": f"Volume {n + 1}", "group_order": n + 1, "language": volume_language,
        "release_date": f"{min(2025, year + n // 3)}-{rng.randint(1, 12):02}-{rng.randint(1, 28):02}",
        "pages": rng.randint(150, 260), "isbn13": None, "nsfw": nsfw18, "nsfw18": nsfw18,
        "cover_path": f"/covers/{series_id}/{n + 1}.jpg", "aspect_ratio": 0.7,
    } for n in range(volume_count)]
    return {
        "id": series_id, "name": name, "type": kind, "slug": slug, "client": 1, "origin": origin,
        "nsfw": nsfw18, "nsfw18": nsfw18, "aliases": aliases,
        "descriptions": [{"description": f"{english}: a {kind.lower()} from {year}. " * 3, "language": "English"}],
        "volumes": volumes,
    }


def entries(series: int, volumes: int, seed: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    counts = volume_counts(series, volumes, rng)
    made_up = made_up_words(rng)
    vocabularies = {language: Words(head, made_up, rng) for language, head in
                    (("English", ENGLISH), ("Japanese", JAPANESE), ("Korean", KOREAN), ("Chinese", CHINESE))}
    slugs: set[str] = set()
    next_volume = 1
    for i, count in enumerate(counts, start=1):
        yield series_entry(i, next_volume, count, rng, slugs, vocabularies)
        next_volume += count


def write_catalog(out: TextIO, series: int, volumes: int, seed: int = 29) -> None:
    out.write('{"series": [\n')
    for i, entry in enumerate(entries(series, volumes, seed)):
        if i:
            out.write(",\n")
        out.write(json.dumps(entry, ensure_ascii=False, separators=(",", ":")))
    out.write("\n]}\n")


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench catalog-gen", description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--volumes", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=29)
    parser.add_argument("--out", type=Path, required=True)
    arguments = parser.parse_args(argv)
    if arguments.series < 1:
        parser.error("--series must be at least 1")
    try:
        with open(arguments.out, "w", encoding="utf-8") as out:
            write_catalog(out, arguments.series, arguments.volumes, arguments.seed)
    except ValueError as error:
        print(f"catalog-gen: {error}", file=sys.stderr)
        return 2
    print(f"catalog-gen: {arguments.out}: {arguments.series} series, {arguments.volumes} volumes, "
          f"{arguments.out.stat().st_size / 1e6:.1f} MB")
    return 0
