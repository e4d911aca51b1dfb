"""The catalog's series as the list routes walk them, held in each process: every series' place in
each language's name order, what the filters and the 18+ rule select it by, and the words a
search finds it by (storage.search_words), in flat arrays of integers.

Why in the process: SecantusDB answers a query by reading every document of the index range it
matches, before any `limit`, and counts by reading documents too. Walking an index "to offset +
limit" reads the whole collection there (550 ms for 10,000 series), and a search for a common word
would read its thousands of series for a page of twenty. Here a page costs a walk of arrays, and
the database reads only the page's own documents (storage.series_browse).

Series are numbered by ascending id (their index); "added" order is that order, since catalog ids
grow as series are added. A cell is what the filters select by: (client, type, origin, 18+).
"""

from __future__ import annotations

import json
import sys
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import compress, islice
from typing import Any

from languages import FALLBACK, LANGUAGES
from storage.search_words import TITLE_START, title_words

FORMAT = 1
# Above any character a word holds: `prefix + _LAST` bounds the words that begin with `prefix`.
_LAST = "\U0010ffff"
# The name order quick searches answer in (the spec gives them no language).
QUICK_SEARCH_LANGUAGE = FALLBACK
# A search's series are sorted when this few, else picked out of a walk of the order.
SORT_AT_MOST = 4096
# A deep page skips the places before it a block of this many at a time.
BLOCK = 1024


@dataclass(frozen=True)
class Cell:
    client: int | None
    type: str | None
    origin: str | None
    nsfw18: bool


@dataclass(frozen=True)
class ListingFilter:
    """Which series a page shows. `types`/`origins` casefolded, None for any; `client` None for
    every client (quick searches)."""

    client: int | None
    nsfw18: bool  # whether 18+ series are shown
    types: frozenset[str] | None = None
    origins: frozenset[str] | None = None

    def shows(self, cell: Cell) -> bool:
        return ((self.client is None or cell.client == self.client) and (self.nsfw18 or not cell.nsfw18)
                and (self.types is None or (cell.type or "").casefold() in self.types)
                and (self.origins is None or (cell.origin or "").casefold() in self.origins))


@dataclass(frozen=True)
class ListingPage:
    ids: list[int]  # the page's series ids, in order
    total: int  # every series the filter and the search select


class SeriesListing:
    def __init__(self, build: str | None, ids: array[int], cells: array[int], cell_keys: Sequence[Cell],
                 orders: dict[str, array[int]], ranks: dict[str, array[int]], words: list[str],
                 word_offsets: array[int], postings: array[int]) -> None:
        self.build = build  # which stored listing this is (None: none was stored)
        self.ids = ids
        self.cells = cells
        self.cell_keys = list(cell_keys)
        sizes = Counter(cells)
        self.cell_sizes = [sizes[cell] for cell in range(len(self.cell_keys))]
        self.orders = orders  # language code -> series indexes in name order
        self.ranks = ranks  # language code -> each series index's place in `orders`
        self.words = words  # sorted
        self.word_offsets = word_offsets  # words[i]'s series are postings[word_offsets[i]:word_offsets[i + 1]]
        self.postings = postings
        self._block_counts: dict[int, list[Counter[int]]] = {}  # see `_blocks`

    @classmethod
    def empty(cls, build: str | None = None) -> SeriesListing:
        return ListingBuilder().build(build)

    def __len__(self) -> int:
        return len(self.ids)

    def has_nsfw18(self, client: int | None) -> bool:
        return any(cell.nsfw18 and (client is None or cell.client == client) and size
                   for cell, size in zip(self.cell_keys, self.cell_sizes, strict=True))

    # ---- pages ----

    def page(self, shown: ListingFilter, words: list[str] | None, language: str, by_name: bool, descending: bool,
             offset: int, limit: int) -> ListingPage:
        """A page in name order (in `language`) or in added order; with `words`, of the series that
        match each (an empty list matches none)."""
        cells = self._shown_cells(shown)
        if words is None:
            total = sum(size for size, on in zip(self.cell_sizes, cells, strict=True) if on)
            return ListingPage(self._ids(self._walk(cells, language, by_name, descending, offset, limit)), total)
        found = self._shown(self._matching(words), cells)
        return ListingPage(self._ids(self._ordered(found, language, by_name, descending, offset, limit)), len(found))

    def quick_search(self, shown: ListingFilter, words: list[str], limit: int) -> list[int]:
        """Series that match each word, those with a title that begins with the first word first,
        each group in English name order."""
        if not words or limit <= 0:
            return []
        found = self._shown(self._matching(words), self._shown_cells(shown))
        starting = found.intersection(self._postings(TITLE_START + words[0]))
        first = self._ordered(starting, QUICK_SEARCH_LANGUAGE, True, False, 0, limit)
        rest = self._ordered(found - starting, QUICK_SEARCH_LANGUAGE, True, False, 0, limit - len(first)) \
            if len(first) < limit else []
        return self._ids(first + rest)

    def _ordered(self, found: set[int], language: str, by_name: bool, descending: bool, offset: int,
                 limit: int) -> list[int]:
        """`found`'s page: a few are sorted; many are picked out of a walk of the whole order,
        which stops at the page's end (a common word's series are everywhere in it)."""
        if len(found) <= SORT_AT_MOST:
            key = self._rank(language).__getitem__ if by_name else None
            return sorted(found, key=key, reverse=descending)[offset:offset + limit]
        order: Sequence[int] = self._order(language) if by_name else range(len(self.ids))
        return list(islice(filter(found.__contains__, reversed(order) if descending else order), offset,
                           offset + limit))

    def _ids(self, indexes: Iterable[int]) -> list[int]:
        return [self.ids[i] for i in indexes]

    def _shown_cells(self, shown: ListingFilter) -> bytes:
        return bytes(shown.shows(cell) for cell in self.cell_keys)

    def _shown(self, indexes: set[int], cells: bytes) -> set[int]:
        if all(cells):
            return indexes
        # A set not changed in between iterates in the same order twice.
        return set(compress(indexes, map(cells.__getitem__, map(self.cells.__getitem__, indexes))))

    def _walk(self, cells: bytes, language: str, by_name: bool, descending: bool, offset: int,
              limit: int) -> list[int]:
        """The shown series at `offset` in an order: whole blocks of BLOCK places are skipped by
        their count of shown series, then a walk of C iterators picks the page out."""
        order: Sequence[int] = self._order(language) if by_name else range(len(self.ids))
        skipped_places = skipped = 0
        if offset >= BLOCK:
            shown = [cell for cell, on in enumerate(cells) if on]
            blocks = self._blocks(order)
            for block in (reversed(blocks) if descending else blocks):
                in_block = sum(block[cell] for cell in shown)
                if skipped + in_block > offset:
                    break
                skipped += in_block
                skipped_places += BLOCK
        # The last block may be short: counted from the end, the places skipped are the rest.
        if descending and skipped_places:
            skipped_places -= BLOCK * len(self._blocks(order)) - len(order)

        def places() -> Iterator[int]:
            return islice(reversed(order) if descending else iter(order), max(0, skipped_places), None)

        shown_places = compress(places(), map(cells.__getitem__, map(self.cells.__getitem__, places())))
        return list(islice(shown_places, offset - skipped, offset - skipped + limit))

    def _blocks(self, order: Sequence[int]) -> list[Counter[int]]:
        """How many series of each cell every BLOCK places of `order` hold: counted at the first
        deep page of an order (C loops: a few ms at 100,000 series), and kept with the listing."""
        key = id(order) if isinstance(order, array) else -1
        blocks = self._block_counts.get(key)
        if blocks is None:
            blocks = [Counter(map(self.cells.__getitem__, islice(order, start, start + BLOCK)))
                      for start in range(0, len(order), BLOCK)]
            self._block_counts[key] = blocks
        return blocks

    def _order(self, language: str) -> array[int]:
        return self.orders.get(language) or self.orders[FALLBACK]

    def _rank(self, language: str) -> array[int]:
        return self.ranks.get(language) or self.ranks[FALLBACK]

    # ---- words ----

    def _matching(self, words: list[str]) -> set[int]:
        """Series indexes with, for each word, a title word that begins with it. The word whose
        series are fewest is read first, and the others only narrow it."""
        if not words:
            return set()
        ranges = sorted((self._word_range(word) for word in words), key=lambda span: span[1] - span[0])
        found: set[int] | None = None
        for start, end in ranges:
            postings = self.postings[start:end]
            found = set(postings) if found is None else found.intersection(postings)
            if not found:
                return set()
        return found or set()

    def _postings(self, prefix: str) -> array[int]:
        start, end = self._word_range(prefix)
        return self.postings[start:end]

    def _word_range(self, prefix: str) -> tuple[int, int]:
        """Where in `postings` the series of the words that begin with `prefix` are: one span,
        since the words are sorted and their series stored in that order."""
        first = bisect_left(self.words, prefix)
        last = bisect_left(self.words, prefix + _LAST, first)
        return self.word_offsets[first], self.word_offsets[last]

    # ---- stored form ----

    def to_bytes(self) -> bytes:
        """The listing as one byte string (a JSON header, then the arrays, in this machine's byte order)."""
        distinct_orders: dict[bytes, int] = {}
        order_of: dict[str, int] = {}
        blobs: list[tuple[str, array[int]]] = [("ids", self.ids), ("cells", self.cells),
                                               ("word_offsets", self.word_offsets), ("postings", self.postings)]
        for code, order in self.orders.items():
            raw = order.tobytes()
            if raw not in distinct_orders:
                distinct_orders[raw] = len(distinct_orders)
                blobs += [(f"order{distinct_orders[raw]}", order), (f"rank{distinct_orders[raw]}", self.ranks[code])]
            order_of[code] = distinct_orders[raw]
        words = "\n".join(self.words).encode("utf-8")
        header = json.dumps({
            "format": FORMAT, "byteorder": sys.byteorder, "build": self.build,
            "cells": [[c.client, c.type, c.origin, c.nsfw18] for c in self.cell_keys], "orders": order_of,
            "arrays": [[name, values.typecode, len(values) * values.itemsize] for name, values in blobs],
            "words": len(words), "word_count": len(self.words),
        }).encode("utf-8")
        return b"".join([len(header).to_bytes(4, "big"), header, *(values.tobytes() for _, values in blobs), words])

    @classmethod
    def from_bytes(cls, data: bytes) -> SeriesListing:
        view = memoryview(data)
        size = int.from_bytes(view[:4], "big")
        header = json.loads(bytes(view[4:4 + size]))
        if header["format"] != FORMAT:
            raise ValueError(f"series listing format {header['format']}, this code reads {FORMAT}")
        position = 4 + size
        arrays: dict[str, array[int]] = {}
        for name, typecode, length in header["arrays"]:
            values = array(typecode)
            values.frombytes(view[position:position + length])
            if header["byteorder"] != sys.byteorder:
                values.byteswap()
            arrays[name] = values
            position += length
        words = bytes(view[position:position + header["words"]]).decode("utf-8").split("\n") \
            if header["word_count"] else []
        return cls(header["build"], arrays["ids"], arrays["cells"], [Cell(*cell) for cell in header["cells"]],
                   {code: arrays[f"order{slot}"] for code, slot in header["orders"].items()},
                   {code: arrays[f"rank{slot}"] for code, slot in header["orders"].items()},
                   words, arrays["word_offsets"], arrays["postings"])


# What the listing reads of a stored series.
SERIES_FIELDS = ("name", "aliases", "sort_titles", "type", "origin", "client", "nsfw18")


class ListingBuilder:
    """Made from series documents in any order (as stored: `SERIES_FIELDS`), one at a time, into
    arrays: a series' id and cell, its English sort title, the titles of the languages that sort
    it elsewhere, and the places of the series of each word (about 400 bytes a series while
    building, most of it the titles)."""

    def __init__(self) -> None:
        self._ids = array("q")
        self._cells = array("I")
        self._cell_numbers: dict[Cell, int] = {}
        self._english: list[str] = []
        self._other_titles: dict[str, tuple[array[int], list[str]]] = {}  # code -> (places, titles)
        self._places_of_word: dict[str, array[int]] = {}

    def add(self, document: dict[str, Any]) -> None:
        place = len(self._ids)  # in the order the documents came
        cell = Cell(document.get("client"), document.get("type"), document.get("origin"),
                    bool(document.get("nsfw18")))
        self._ids.append(document["_id"])
        self._cells.append(self._cell_numbers.setdefault(cell, len(self._cell_numbers)))
        sort_titles = document.get("sort_titles") or {}
        english = sort_titles.get(FALLBACK) or str(document.get("name", "")).casefold()
        self._english.append(english)
        for code, title in sort_titles.items():
            if code != FALLBACK and code in LANGUAGES and title != english:
                places, titles = self._other_titles.setdefault(code, (array("I"), []))
                places.append(place)
                titles.append(title)
        titles_read = [document.get("name") or "", *(alias.get("title") or "" for alias in document.get("aliases") or ())]
        for word in title_words(*titles_read):
            self._places_of_word.setdefault(word, array("I")).append(place)

    def build(self, build: str | None) -> SeriesListing:
        count = len(self._ids)
        by_id = array("I", sorted(range(count), key=self._ids.__getitem__))  # places, in id order
        index_of = array("I", sorted(range(count), key=by_id.__getitem__))  # place -> index (the inverse)
        ids = array("q", map(self._ids.__getitem__, by_id))
        cells = array("I", map(self._cells.__getitem__, by_id))
        english = list(map(self._english.__getitem__, by_id))
        orders: dict[str, array[int]] = {}
        ranks: dict[str, array[int]] = {}
        distinct: dict[bytes, tuple[array[int], array[int]]] = {}
        for code in LANGUAGES:
            titles = english
            if code in self._other_titles:
                titles = list(english)
                places, other = self._other_titles[code]
                for place, title in zip(places, other, strict=True):
                    titles[index_of[place]] = title
            # Ties go to the lower id: the indexes are in id order, and the sort is stable.
            order = array("I", sorted(range(count), key=titles.__getitem__))
            raw = order.tobytes()
            if raw not in distinct:
                # The inverse permutation: each index's place in the order.
                distinct[raw] = (order, array("I", sorted(range(count), key=order.__getitem__)))
            orders[code], ranks[code] = distinct[raw]
        words = sorted(self._places_of_word)
        offsets = array("I", [0])
        postings = array("I")
        for word in words:
            postings.extend(sorted(map(index_of.__getitem__, self._places_of_word[word])))
            offsets.append(len(postings))
        return SeriesListing(build, ids, cells, list(self._cell_numbers), orders, ranks, words, offsets, postings)
