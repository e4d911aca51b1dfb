"""Reading status bodies and answers, and the reading-history query and page."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    Field,
    StrictStr,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from auth.clock import iso_utc
from handlers.schemas.catalog import ClientId, VolumeCard, series_card
from handlers.schemas.common import (
    PAGE_FROM,
    PAGE_TO,
    PAGE_TOTAL,
    AcceptsKeyObject,
    Count,
    DateTimeText,
    JsonInt,
    RequestModel,
    capped_limit,
    one_of,
    unblanked,
)
from partial_dates import PARTIAL_DATE_PATTERN, date_range, ends_before_start
from storage.reading import StatusFields
from storage.records import SeriesRecord, StatusRecord

VisibilityValue = Literal["private", "public"]
ProgressTypeValue = Literal["chapters", "volumes"]
# The spec's four, and `planned` ("plan to read", what other trackers and MAL exports have).
StatusValue = Literal["started", "completed", "paused", "dropped", "planned"]
PriorityValue = Literal["low", "mid", "high"]
Visibility = Annotated[VisibilityValue, AcceptsKeyObject]
ProgressType = Annotated[ProgressTypeValue, AcceptsKeyObject]
Status = Annotated[StatusValue, AcceptsKeyObject]
Priority = Annotated[PriorityValue, AcceptsKeyObject]


def _json_number(value: Any) -> Any:
    # Strict about kind (no "3", no true), lenient about int vs float.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be a number")
    return value


Number = Annotated[float, BeforeValidator(_json_number)]


def _partial_date(value: str) -> str:
    date_range(value)
    return value


# Checked by date_range (its messages name what is wrong); the document publishes the same rule
# as a pattern.
PartialDate = Annotated[StrictStr, Field(max_length=10, json_schema_extra={"pattern": PARTIAL_DATE_PATTERN})]


class ReadingStatusBody(RequestModel):
    """A reading status, as add and update take it. The document names the progress type
    `progress_type`, as the service answers it and the account file holds it; the spec's
    `progressType` is taken too (the original web client sends it), never both. `end` must not
    be before `start` (partial dates compare as the days they cover: `end` 2024 is not before
    `start` 2024-05), which no schema can say: 400 naming `end`."""

    visibility: Visibility
    # The first name is the document's (one name per field, or a generated client gets two
    # attributes for one value); the second is the spec's.
    progress_type: ProgressType = Field(validation_alias=AliasChoices("progress_type", "progressType"))
    progress: Annotated[Number, Field(ge=0, le=1_000_000, allow_inf_nan=False)]
    status: Status
    reread: Annotated[JsonInt, Field(ge=0, le=1000)] | None = None
    score: Annotated[Number, Field(ge=0, le=10, allow_inf_nan=False)] | None = None
    priority: Priority
    start: PartialDate | None = None
    end: PartialDate | None = None
    notes: Annotated[StrictStr, Field(max_length=10_000)] | None = None
    client: ClientId

    @field_validator("start")
    @classmethod
    def _real_start(cls, value: str | None) -> str | None:
        return None if value is None else _partial_date(value)

    @field_validator("end")
    @classmethod
    def _real_end_not_before_start(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        _partial_date(value)
        if ends_before_start(info.data.get("start"), value):
            raise ValueError("must not be before start")
        return value

    def status_fields(self) -> StatusFields:
        return StatusFields(visibility=self.visibility, progress_type=self.progress_type, progress=self.progress,
                            status=self.status, reread=self.reread, score=self.score, priority=self.priority,
                            start=self.start, end=self.end, notes=self.notes)


# A (partial) date of an answer, as the document publishes it.
PartialDateText = Annotated[str, WithJsonSchema({"type": "string", "pattern": PARTIAL_DATE_PATTERN})]


class ReadingStatus(BaseModel):
    user_id: str
    series_id: int
    client: int
    visibility: Annotated[str, one_of(VisibilityValue)]
    progress_type: Annotated[str, one_of(ProgressTypeValue)]
    progress: float
    status: Annotated[str, one_of(StatusValue)]
    reread: int | None
    score: float | None
    priority: Annotated[str, one_of(PriorityValue)]
    start: PartialDateText | None
    end: PartialDateText | None
    notes: str | None
    last_update: DateTimeText

    @classmethod
    def of(cls, status: StatusRecord, user_id: str) -> ReadingStatus:
        # The record's fields are the answer's, but for the user and the time's text.
        return cls(**{**vars(status), "user_id": user_id, "last_update": iso_utc(status.last_update)})


HistoryOrder = Literal[
    "name-asc", "name-desc", "update-asc", "update-desc", "priority-asc", "priority-desc",
    "score-asc", "score-desc", "start-date-asc", "start-date-desc", "end-date-asc", "end-date-desc",
]
MAX_LIMIT = 100




class PagedSearch(RequestModel):
    """Paging and search, shared by every list route. `limit` above 100 is capped; a search is
    trimmed, and a blank one is none."""

    limit: Annotated[int, Count(0), Field(description=capped_limit(MAX_LIMIT))] = 20
    offset: Annotated[int, Count(0, 10_000_000)] = 0
    search: Annotated[StrictStr, Field(max_length=100)] | None = None

    @property
    def page_size(self) -> int:
        return min(self.limit, MAX_LIMIT)

    @property
    def search_text(self) -> str | None:
        return unblanked(self.search) if self.search else None


class ListQuery(PagedSearch):
    """The catalog's lists: paging and search, and the language titles are shown in."""

    user_lang: Annotated[StrictStr, Field(max_length=40)] | None = None


class ReadingHistoryQuery(ListQuery):
    order: Annotated[HistoryOrder, AcceptsKeyObject] = "update-desc"
    client: ClientId | None = None
    status: Annotated[Status | None, Field(description="Only the entries of this reading status (`max` counts "
                                                       "only those); every status when absent")] = None


class HistoryItem(BaseModel):
    id: int
    name: str
    type: str | None
    slug: str | None
    origin: str | None
    client: int | None
    alias: str | None
    description: str | None
    volume: VolumeCard | None
    average_rating: float | None
    rating_count: int
    reading_history: ReadingStatus = Field(alias="reading-history")


    @classmethod
    def of(cls, status: StatusRecord, series: SeriesRecord, user_id: str, language: str | None,
           shows_nsfw18: bool) -> HistoryItem:
        # The alias is not a Python name, so it is passed as a key.
        status_field: dict[str, Any] = {"reading-history": ReadingStatus.of(status, user_id)}
        return cls(**series_card(series, language, shows_nsfw18), **status_field)


class ReadingHistoryPage(BaseModel):
    series: list[HistoryItem]
    max: int = Field(description=PAGE_TOTAL)
    from_: int = Field(alias="from", description=PAGE_FROM)
    to: int = Field(description=PAGE_TO)

    @classmethod
    def of(cls, items: Sequence[HistoryItem], total: int, offset: int) -> Self:
        # A sequence, so a subclass's page takes its own items; pydantic copies the list anyway.
        return cls(series=list(items), max=total, to=offset + len(items), **{"from": offset})


class StatusHistoryQuery(RequestModel):
    limit: Annotated[int, Count(0), Field(description=capped_limit(MAX_LIMIT))] = 20
    offset: Annotated[int, Count(0, 10_000)] = 0

    @property
    def page_size(self) -> int:
        return min(self.limit, MAX_LIMIT)


class StatusChange(BaseModel):
    """One change of a reading status: when, which fields, the status before and after it (null
    before an add and after a delete), and the import that made it, if one did."""

    at: str
    fields: list[str]
    before: ReadingStatus | None
    after: ReadingStatus | None
    import_id: str | None


class StatusHistoryPage(BaseModel):
    history: list[StatusChange]
    max: int  # how many changes of the status are kept (the newest STATUS_HISTORY_LIMIT)
    from_: int = Field(alias="from")
    to: int
