"""Reading statistics of a list of stored statuses (storage.reading_stats.reading_stats): counts,
progress kept apart by kind, the mean and distribution of scores, types, years of completion."""

from __future__ import annotations

from typing import Any

import pytest

from storage.reading_stats import STATUSES, UNKNOWN_TYPE, history_figures, reading_stats

TYPES = {1: "Manga", 2: "Manhwa", 3: "Manga"}


def entry(series_id: int = 1, status: str = "started", **fields: Any) -> dict[str, Any]:
    """A status with the fields the statistics read (own_stats_expression's projection)."""
    return {"series_id": series_id, "status": status, "progress_type": "chapters", "progress": 0.0, "reread": None,
            "score": None, "end": None, **fields}


def stats(*entries: dict[str, Any]) -> Any:
    return reading_stats(entries, TYPES.get)


def test_an_empty_list_has_zero_counts_and_no_mean() -> None:
    empty = stats()
    assert empty.entries == 0 and empty.by_status == dict.fromkeys(STATUSES, 0)
    assert (empty.chapters_read, empty.volumes_read, empty.rereads, empty.mean_score) == (0, 0, 0, None)
    assert empty.score_distribution == {str(n): 0 for n in range(1, 11)}
    assert empty.by_type == {} and empty.completed_by_year == {}


def test_every_status_is_counted_and_all_five_are_listed() -> None:
    counted = stats(entry(status="started"), entry(status="completed"), entry(status="completed"),
                    entry(status="planned"))
    assert counted.entries == 4
    assert counted.by_status == {"started": 1, "completed": 2, "paused": 0, "dropped": 0, "planned": 1}


def test_chapters_and_volumes_are_summed_apart() -> None:
    summed = stats(entry(progress=10.5), entry(progress=3, progress_type="volumes"), entry(progress=4),
                   entry(progress=None, progress_type="volumes"))
    assert (summed.chapters_read, summed.volumes_read) == (14.5, 3)


def test_rereads_are_summed_with_none_as_zero() -> None:
    assert stats(entry(reread=2), entry(reread=None), entry(reread=1)).rereads == 3


def test_the_mean_ignores_unscored_entries_and_keeps_two_decimals() -> None:
    assert stats(entry(score=10), entry(score=None), entry(score=8), entry(score=8)).mean_score == 8.67
    # 0 means unscored (the contract): it is neither in the mean nor in the distribution.
    assert stats(entry(score=0)).mean_score is None
    assert stats(entry(score=0), entry(score=9)).mean_score == 9
    assert sum(stats(entry(score=0)).score_distribution.values()) == 0


@pytest.mark.parametrize("score, bucket", [(0.1, "1"), (0.4, "1"), (1.5, "2"), (2.5, "3"), (8.49, "8"), (8.5, "9"),
                                           (9.5, "10"), (10, "10")])
def test_a_score_counts_in_its_nearest_whole_with_halves_up_and_below_1_as_1(score: float, bucket: str) -> None:
    distribution = stats(entry(score=score)).score_distribution
    assert distribution[bucket] == 1 and sum(distribution.values()) == 1


def test_types_come_from_the_catalog_and_a_series_it_lacks_is_unknown() -> None:
    typed = stats(entry(1), entry(2), entry(3), entry(99))
    assert typed.by_type == {"Manga": 2, "Manhwa": 1, UNKNOWN_TYPE: 1}
    assert list(typed.by_type) == sorted(typed.by_type)


def test_completed_entries_with_a_finish_date_count_by_its_year() -> None:
    years = stats(entry(status="completed", end="2023-05-02"), entry(status="completed", end="2023"),
                  entry(status="completed", end="2021-12"), entry(status="completed", end=None),
                  entry(status="dropped", end="2022-01-01"))
    assert years.completed_by_year == {"2021": 1, "2023": 2}
    assert list(years.completed_by_year) == ["2021", "2023"]


def test_entries_may_be_any_one_pass_iterable() -> None:
    assert reading_stats((entry(score=5) for _ in range(3)), TYPES.get).entries == 3


def test_the_reading_dates_span_partial_dates_as_the_days_they_mean() -> None:
    figures = history_figures([entry(1, start="2019-05", end="2019-05-20"), entry(2, start="2019"),
                               entry(3, end="2018-12-31"), entry(4)])
    # 2018-12-31 is the earliest day; `2019` (to December 31) ends after 2019-05-20.
    assert (figures.first_date, figures.last_date) == ("2018-12-31", "2019")
    same_day = history_figures([entry(1, start="2020"), entry(2, start="2020-01-01", end="2020-12-31")])
    assert (same_day.first_date, same_day.last_date) == ("2020-01-01", "2020-12-31")  # the more precise
    assert (history_figures([entry(1)]).first_date, history_figures([]).last_date) == (None, None)
    assert history_figures([entry(1, start="not a date", end="2021")]).first_date == "2021"


def test_the_general_figures_count_as_the_statistics_do() -> None:
    figures = history_figures([entry(1, "completed", score=8, reread=2), entry(2, "paused", score=0),
                               entry(3, "paused", score=5)])
    assert (figures.stats.entries, figures.stats.by_status["paused"], figures.stats.rereads,
            figures.stats.mean_score) == (3, 2, 2, 6.5)
