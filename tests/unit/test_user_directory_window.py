"""The directory of public users finds a page from its ranges' counts (storage.user_directory):
the read `window` computes must give exactly the rows a sort, an offset and a limit over every
row would, for any cut into ranges (empty ones included), either direction, with or without a
search's bounds, and must read no more than the ranges the page falls in."""

from __future__ import annotations

import random
from bisect import bisect_left

import pytest

from storage.user_directory import Ranges, RowRead, Scope, since_key, window

ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789_.-"


def names(rng: random.Random, count: int) -> list[str]:
    chosen: set[str] = set()
    while len(chosen) < count:
        # Few first letters, so that searches match many names and ranges split inside a prefix.
        chosen.add(rng.choice("abm") + "".join(rng.choice(ALPHABET) for _ in range(rng.randint(2, 6))))
    return sorted(chosen)


def cut(rng: random.Random, keys: list[str]) -> Ranges:
    """Ranges over `keys` with random bounds, some of them empty (a bound no key is at or after
    before the next one)."""
    bounds = sorted(set(rng.sample(keys, k=min(len(keys), rng.randint(0, 12)))) |
                    {key + "~" for key in rng.sample(keys, k=min(len(keys), 3))})
    lows = ("", *bounds)
    highs = (*bounds, None)
    counts = tuple(sum(1 for key in keys if key >= low and (high is None or key < high))
                   for low, high in zip(lows, highs, strict=True))
    return Ranges(lows, counts)


def read_rows(keys: list[str], read: RowRead | None) -> list[str]:
    if read is None:
        return []
    inside = [key for key in keys if key >= read.low and (read.high is None or key < read.high)]
    ordered = sorted(inside, reverse=read.descending)
    return ordered[read.skip:read.skip + read.limit]


def scope_of(keys: list[str], prefix: str | None) -> Scope:
    if prefix is None:
        return Scope("", None, 0, len(keys))
    end = prefix + "\x7f"
    return Scope(prefix, end, bisect_left(keys, prefix), bisect_left(keys, end))


@pytest.mark.parametrize("seed", range(40))
def test_a_window_reads_exactly_the_page(seed: int) -> None:
    rng = random.Random(seed)
    keys = names(rng, rng.randint(0, 120))
    ranges = cut(rng, keys) if keys else Ranges(("",), (0,))
    assert ranges.total == len(keys)
    for prefix in (None, "a", "b", "m", "ab", "z", *(key[:3] for key in keys[:3])):
        scope = scope_of(keys, prefix)
        matching = [key for key in keys if prefix is None or key.startswith(prefix)]
        for descending in (False, True):
            expected_order = sorted(matching, reverse=descending)
            for offset in (0, 1, 5, 17, len(matching) - 1, len(matching), len(matching) + 3):
                for limit in (0, 1, 3, 44):
                    read = window(ranges, "name", scope, max(0, offset), limit, descending)
                    expected = expected_order[max(0, offset):max(0, offset) + limit]
                    assert read_rows(keys, read) == expected, (seed, prefix, descending, offset, limit)
                    if read is not None:
                        # Bounded by the ranges holding the page's first and last rows.
                        rank = keys.index(expected[0]) if not descending else keys.index(expected[-1])
                        last = keys.index(expected[-1]) if not descending else keys.index(expected[0])
                        bound = ranges.counts[ranges.holding(rank)] + ranges.counts[ranges.holding(last)] + limit
                        assert len([k for k in keys if k >= read.low and (read.high is None or k < read.high)]) \
                            <= bound


def test_holding_skips_empty_ranges_and_index_of_finds_a_keys_range() -> None:
    ranges = Ranges(("", "b", "c", "d"), (2, 0, 3, 0))
    assert [ranges.holding(rank) for rank in range(5)] == [0, 0, 2, 2, 2]
    assert ranges.holding(9) == 3  # past the end: the last range (a read that finds nothing)
    assert [ranges.index_of(key) for key in ("a", "b", "bz", "c", "zz")] == [0, 1, 1, 2, 3]
    assert (ranges.total, ranges.before(2), ranges.high(2), ranges.high(3)) == (5, 2, "d", None)


def test_the_registration_key_orders_by_time_then_name_to_the_millisecond() -> None:
    from datetime import datetime, timedelta, timezone

    moment = datetime(2026, 3, 4, 5, 6, 7, 891_234, tzinfo=timezone.utc)
    assert since_key(moment, "alice") == "2026-03-04T05:06:07.891Z alice"
    # As stored (naive UTC, milliseconds) and as registration has it (aware): the same key.
    assert since_key(moment.replace(tzinfo=None, microsecond=891_000), "alice") == since_key(moment, "alice")
    assert since_key(moment.astimezone(timezone(timedelta(hours=9))), "bob") == "2026-03-04T05:06:07.891Z bob"
    assert since_key(moment, "bob") > since_key(moment, "alice")
    assert since_key(moment + timedelta(milliseconds=1), "aaa") > since_key(moment, "zzz")
