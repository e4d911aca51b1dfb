"""The catalog's list answers (`GET /series`, `GET /series/quick-search`) and their queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal, Self

from pydantic import BaseModel, Field, RootModel, StrictStr, field_validator

from handlers.schemas.catalog import ClientId, VolumeCard, series_card
from handlers.schemas.common import (
    BLANK,
    PAGE_FROM,
    PAGE_TO,
    PAGE_TOTAL,
    WHITESPACE,
    Count,
    RequestModel,
    capped_limit,
    unblanked,
)
from handlers.schemas.reading import ListQuery
from languages import requested_language
from storage.records import SeriesRecord

SeriesOrder = Literal["name-asc", "name-desc", "added-asc", "added-desc"]
# `filters`: `key:value` items separated by semicolons; a key given twice takes either value.
FILTER_KEYS = ("type", "origin")
MAX_FILTERS = 20
# parse_filters' rule as a JSON Schema pattern, for the document: `;`-separated parts, each blank
# or `key:value` (a known key in any case, a value that is not blank), at most MAX_FILTERS of them
# not blank. tests/unit/test_filter_pattern.py holds the two to the same answers.
_KEY = "(?:" + "|".join("".join(f"[{c.upper()}{c}]" for c in key) for key in FILTER_KEYS) + ")"
_SPACE = f"[{WHITESPACE}]*"
_FILTER = rf"{_SPACE}{_KEY}{_SPACE}:{_SPACE}[^;{WHITESPACE}][^;]*"
FILTERS_PATTERN = (rf"^(?:{_SPACE};)*(?:{_FILTER}(?:;{_SPACE})*(?:;{_FILTER}(?:;{_SPACE})*){{0,{MAX_FILTERS - 1}}}"
                   rf"|{_SPACE})$")
QUICK_SEARCH_LIMIT = 10
MAX_QUICK_SEARCH_LIMIT = 50


def parse_filters(text: str) -> dict[str, frozenset[str]]:
    """`type:Manga;origin:Japanese` -> {"type": {"manga"}, "origin": {"japanese"}}: values casefolded,
    empty items (a trailing `;`) skipped. Raises ValueError naming the first bad item."""
    chosen: dict[str, set[str]] = {}
    items = [item.strip() for item in text.split(";") if item.strip()]
    if len(items) > MAX_FILTERS:
        raise ValueError(f"at most {MAX_FILTERS} filters")
    for item in items:
        key, colon, value = item.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key not in FILTER_KEYS:
            raise ValueError(f"unknown filter {key!r}: the filters are {' and '.join(FILTER_KEYS)} "
                             f"(e.g. type:Manga;origin:Japanese)")
        if not colon or not value:
            raise ValueError(f"filter {key!r} needs a value after ':'")
        chosen.setdefault(key, set()).add(value.casefold())
    return {key: frozenset(values) for key, values in chosen.items()}


class SeriesListQuery(ListQuery):
    """`limit` above 100 is capped; `search` and `filters` as the README's API section says."""

    client: ClientId
    # `lang` as the spec names it, `user_lang` as the other lists do: either localizes.
    lang: Annotated[StrictStr, Field(max_length=40)] | None = None
    order: SeriesOrder = "name-asc"
    filters: Annotated[StrictStr, Field(max_length=1000, json_schema_extra={"pattern": FILTERS_PATTERN})] | None = None

    @field_validator("filters")
    @classmethod
    def _known_filters(cls, value: str | None) -> str | None:
        if value is not None:
            parse_filters(value)
        return value

    @property
    def language(self) -> str:
        return requested_language(self.lang or self.user_lang)

    def filter_values(self, key: str) -> frozenset[str] | None:
        """The values asked for `key`, casefolded; None when any will do."""
        return parse_filters(self.filters).get(key) if self.filters else None


class SeriesListItem(BaseModel):
    id: int
    name: str
    type: str | None
    slug: str | None
    public: int = 1  # the catalog holds public series only
    relation_diagram: None = None  # the catalog holds no relations
    client: int | None
    origin: str | None
    aliases: list[str]
    alias: str | None
    description: str | None
    tags: list[str]
    volume: VolumeCard | None
    average_rating: float | None
    rating_count: int

    @classmethod
    def of(cls, series: SeriesRecord, language: str | None, shows_nsfw18: bool) -> Self:
        return cls(**series_card(series, language, shows_nsfw18), aliases=list(series.aliases),
                   tags=list(series.tags))


class SeriesListPage(BaseModel):
    series: list[SeriesListItem]
    max: int = Field(description=PAGE_TOTAL)
    from_: int = Field(alias="from", description=PAGE_FROM)
    to: int = Field(description=PAGE_TO)

    @classmethod
    def of(cls, items: Sequence[SeriesListItem], total: int, offset: int) -> Self:
        return cls(series=list(items), max=total, to=offset + len(items), **{"from": offset})


class QuickSearchQuery(RequestModel):
    """`limit` above MAX_QUICK_SEARCH_LIMIT is capped."""

    # A blank search (whitespace and control characters only) is a missing one (400 "Required
    # parameters missing"): the pattern says so.
    search: Annotated[StrictStr, Field(max_length=100, json_schema_extra={"pattern": f"[^{BLANK}]"})]
    limit: Annotated[int, Count(0), Field(description=capped_limit(MAX_QUICK_SEARCH_LIMIT))] = QUICK_SEARCH_LIMIT

    @property
    def search_text(self) -> str | None:
        return unblanked(self.search)

    @property
    def page_size(self) -> int:
        return min(self.limit, MAX_QUICK_SEARCH_LIMIT)


class QuickSearchItem(BaseModel):
    id: int
    name: str
    type: str | None
    slug: str | None
    origin: str | None
    aliases: list[str]

    @classmethod
    def of(cls, series: SeriesRecord) -> Self:
        return cls(id=series.id, name=series.name, type=series.type, slug=series.slug, origin=series.origin,
                   aliases=list(series.aliases))


class QuickSearchAnswer(RootModel[list[QuickSearchItem]]):
    pass
