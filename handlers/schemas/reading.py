"""Reading status bodies and answers, and the reading-history query and page."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
)

from auth.clock import iso_utc
from handlers.schemas.catalog import ClientId, VolumeCard, series_card
from handlers.schemas.common import AcceptsKeyObject, RequestModel
from partial_dates import date_range, ends_before_start
from storage.reading import StatusFields
from storage.records import SeriesRecord, StatusRecord

Visibility = Annotated[Literal["private", "public"], AcceptsKeyObject]
ProgressType = Annotated[Literal["chapters", "volumes"], AcceptsKeyObject]
# The spec's four, and `planned` ("plan to read", what other trackers and MAL exports have).
Status = Annotated[Literal["started", "completed", "paused", "dropped", "planned"], AcceptsKeyObject]
Priority = Annotated[Literal["low", "mid", "high"], AcceptsKeyObject]


def _json_number(value: Any) -> Any:
    # Strict about kind (no "3", no true), lenient about int vs float.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be a number")
    return value


Number = Annotated[float, BeforeValidator(_json_number)]


def _partial_date(value: str) -> str:
    date_range(value)
    return value


# The pattern is what JSON Schema can say; that the day exists (no February 30) is checked too.
PartialDate = Annotated[StrictStr, Field(max_length=10,
                                         pattern=r"^[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?$")]


def _either_progress_type_name(schema: dict[str, Any]) -> None:
    """The schema says what the service takes: `progressType` (the spec's) or `progress_type`
    (what the service answers and the account file holds), one of them required. Two whole
    object variants rather than `anyOf` of bare `required` lists, which client generators turn
    into `unknown`."""
    properties = schema.get("properties", {})
    if "progressType" not in properties:
        return
    properties["progress_type"] = properties["progressType"]
    required = [name for name in schema.get("required", []) if name != "progressType"]
    body = {key: value for key, value in schema.items() if key not in ("title", "required")}
    title = schema.get("title")
    schema.clear()
    schema.update({"title": title, "anyOf": [{**body, "required": [*required, name]}
                                             for name in ("progressType", "progress_type")]})


class ReadingStatusBody(RequestModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_either_progress_type_name)

    visibility: Visibility
    progress_type: ProgressType = Field(validation_alias=AliasChoices("progressType", "progress_type"))
    progress: Annotated[Number, Field(ge=0, le=1_000_000, allow_inf_nan=False)]
    status: Status
    reread: Annotated[StrictInt, Field(ge=0, le=1000)] | None = None
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


class ReadingStatus(BaseModel):
    user_id: str
    series_id: int
    client: int
    visibility: str
    progress_type: str
    progress: float
    status: str
    reread: int | None
    score: float | None
    priority: str
    start: str | None
    end: str | None
    notes: str | None
    last_update: str

    @classmethod
    def of(cls, status: StatusRecord, user_id: str) -> ReadingStatus:
        # The record's fields are the answer's, but for the user and the time's text.
        return cls(**{**vars(status), "user_id": user_id, "last_update": iso_utc(status.last_update)})


HistoryOrder = Literal[
    "name-asc", "name-desc", "update-asc", "update-desc", "priority-asc", "priority-desc",
    "score-asc", "score-desc", "start-date-asc", "start-date-desc", "end-date-asc", "end-date-desc",
]
MAX_LIMIT = 100


def _plain_count(value: Any) -> Any:
    """A count from a query string is plain ASCII digits: not `1_0`, `+5`, ` 7` or `١٠`, which
    Python's int() would all accept. A JSON body's count must be a JSON integer."""
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()):
            raise ValueError("must be a whole number written with digits only")
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a whole number")
    return value


PlainCount = Annotated[int, BeforeValidator(_plain_count)]


class PagedSearch(RequestModel):
    """Paging and search, shared by every list route. `limit` above 100 is capped; a search is
    trimmed, and a blank one is none."""

    limit: Annotated[PlainCount, Field(ge=0)] = 20
    offset: Annotated[PlainCount, Field(ge=0, le=10_000_000)] = 0
    search: Annotated[StrictStr, Field(max_length=100)] | None = None

    @property
    def page_size(self) -> int:
        return min(self.limit, MAX_LIMIT)

    @property
    def search_text(self) -> str | None:
        return self.search.strip() or None if self.search else None


class ListQuery(PagedSearch):
    """The catalog's lists: paging and search, and the language titles are shown in."""

    user_lang: Annotated[StrictStr, Field(max_length=40)] | None = None


class ReadingHistoryQuery(ListQuery):
    order: Annotated[HistoryOrder, AcceptsKeyObject] = "update-desc"
    client: ClientId | None = None


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
    max: int
    from_: int = Field(alias="from")
    to: int

    @classmethod
    def of(cls, items: Sequence[HistoryItem], total: int, offset: int) -> Self:
        # A sequence, so a subclass's page takes its own items; pydantic copies the list anyway.
        return cls(series=list(items), max=total, to=offset + len(items), **{"from": offset})


class StatusHistoryQuery(RequestModel):
    limit: Annotated[PlainCount, Field(ge=0)] = 20  # above 100: 100
    offset: Annotated[PlainCount, Field(ge=0, le=10_000)] = 0

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
