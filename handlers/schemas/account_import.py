"""Account file import: the query and the report of what it did (or, in a dry run, would do).
The file itself is formats.account_file."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ListReport(BaseModel):
    """What an import did (or, in a dry run, would do) to one list, counted by entry."""

    add: int = 0  # entries the account does not have
    change: int = 0  # entries it has with other values, replaced (merge=replace)
    kept: int = 0  # entries it has with other values, left as they are (merge=keep)
    unchanged: int = 0  # entries it has with the same values
    unknown: list[int] = Field(default_factory=list)  # series (or, for the collection, volume) ids not in the catalog
    refused: int = 0  # entries the user may not write (ratings without `rate-series`)


class ImportReport(BaseModel):
    mode: Literal["dry-run", "apply"]
    merge: Literal["keep", "replace"]
    applied: bool
    reading_statuses: ListReport
    ratings: ListReport
    collection: ListReport
    settings: ListReport


class ImportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["dry-run", "apply"] = "dry-run"
    merge: Literal["keep", "replace"] = "keep"
