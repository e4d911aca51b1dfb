"""The catalog's detail reads: a series or a volume by its slug, and a series' volumes.

Each is found through an index (`slug_unique` on series and on volumes, `series_id` on volumes,
made by `CatalogStore.ensure_indexes`); a volume page is the volume, then its series and its
siblings at once, a series' volumes the series and its volumes at once. Not joined with
`$unionWith`: SecantusDB reads the whole collection a `$unionWith` names before matching (3.5 s
a page at 100,000 volumes). A series' volumes are ordered here, by reading order as a series' first
volume is chosen at import: a series holds tens of volumes, a few hundred at most, and that
comes from the catalog, not from a client.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from storage.records import SeriesRecord, VolumeRecord

# What the detail routes show of a series: none of the keys derived for ordering and matching.
_SERIES = {field: 1 for field in ("name", "type", "slug", "origin", "client", "nsfw18", "aliases", "titles",
                                  "descriptions", "tags", "first_volume", "rating_count", "rating_half_points")}
_VOLUME = {field: 1 for field in ("name", "slug", "series_id", "client", "language", "release_date", "pages",
                                  "nsfw", "nsfw18", "aspect_ratio", "cover_path", "group_order")}
_SIBLING = {"slug": 1, "series_id": 1, "group_order": 1, "nsfw18": 1, "name": 1}


def reading_order(volume: VolumeRecord) -> tuple[bool, int, int]:
    """Volumes without an order come after the ordered ones; ties go to the lower id."""
    return volume.group_order is None, volume.group_order or 0, volume.id


@dataclass(frozen=True)
class SeriesVolumes:
    series: SeriesRecord
    volumes: list[VolumeRecord]  # in reading order


@dataclass(frozen=True)
class VolumePage:
    volume: VolumeRecord
    series: SeriesRecord
    siblings: list[VolumeRecord]  # every volume of the series, this one included, in reading order (slugs only)


def _in_reading_order(documents: list[dict[str, Any]]) -> list[VolumeRecord]:
    return sorted((VolumeRecord.of(d) for d in documents), key=reading_order)


class CatalogPages:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._series = db["series"]
        self._volumes = db["volumes"]

    async def series_by_slug(self, slug: str) -> SeriesRecord | None:
        found = await self._series.find_one({"slug": slug}, _SERIES, sort=[("_id", 1)])
        return None if found is None else SeriesRecord.of(found)

    async def series_volumes(self, series_id: int) -> SeriesVolumes | None:
        """None when no series has the id."""
        series, volumes = await asyncio.gather(
            self._series.find_one({"_id": series_id}, {"nsfw18": 1, "name": 1, "type": 1, "slug": 1}),
            self._volumes.find({"series_id": series_id}, _VOLUME).to_list(length=None))
        return None if series is None else SeriesVolumes(SeriesRecord.of(series), _in_reading_order(volumes))

    async def volume_by_slug(self, slug: str) -> VolumePage | None:
        """None when no volume has the slug (or, in a catalog being changed, its series is gone)."""
        found = await self._volumes.find_one({"slug": slug}, _VOLUME, sort=[("_id", 1)])
        if found is None:
            return None
        series_id = found["series_id"]
        series, siblings = await asyncio.gather(
            self._series.find_one({"_id": series_id}, {"nsfw18": 1, "name": 1, "type": 1, "slug": 1, "titles": 1}),
            self._volumes.find({"series_id": series_id}, _SIBLING).to_list(length=None))
        if series is None:
            return None
        return VolumePage(VolumeRecord.of(found), SeriesRecord.of(series), _in_reading_order(siblings))
