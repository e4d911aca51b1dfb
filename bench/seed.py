"""What the benchmarks seed: a synthetic catalog, a reader's statuses and collection items in the
shape the service stores them, and a real image. Written straight into the database, since
seeding thousands of entries through the HTTP routes would take longer than the measurement."""

from __future__ import annotations

import io
import random
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from PIL import Image

from storage.catalog import CatalogFile
from tests.images import b64


def catalog(size: int, volume_count: Callable[[int], int], *, cover_paths: bool = True) -> CatalogFile:
    """Series 1..size of client 1, each with an English and a German alias; series `i` has
    volumes `i * 10 + 1` .. `i * 10 + volume_count(i)` (at most 9)."""
    entries = []
    for i in range(1, size + 1):
        volumes = [{"id": i * 10 + n, "name": f"Volume {n}", "group_order": n} for n in range(1, volume_count(i) + 1)]
        if cover_paths:
            for volume in volumes:
                volume["cover_path"] = f"/c/{i}-{volume['group_order']}.jpg"
        entries.append({
            "id": i, "name": f"Series {i:05}", "type": "Manga", "slug": f"series-{i}", "client": 1,
            "aliases": [{"title": f"Title {random.randint(0, 99999):05}", "language": "English"},
                        {"title": f"Titel {random.randint(0, 99999):05}", "language": "German"}],
            "descriptions": [{"description": "A description of ordinary length. " * 8, "language": "English"}],
            "volumes": volumes,
        })
    return CatalogFile.model_validate({"series": entries})


def statuses(series_ids: Iterable[int]) -> list[dict[str, Any]]:
    now = datetime.now(timezone.utc)
    return [{
        "series_id": series_id, "client": 1, "visibility": "private", "progress_type": "chapters",
        "progress": random.randint(0, 300), "status": random.choice(["started", "completed", "paused", "dropped"]),
        "reread": 0, "score": random.randint(0, 10), "priority": random.choice(["low", "mid", "high"]),
        "start": f"20{random.randint(10, 24)}-0{random.randint(1, 9)}", "end": None, "notes": None,
        "last_update": now - timedelta(minutes=random.randint(0, 10**6)),
    } for series_id in series_ids]


def collection_items(volumes: Iterable[tuple[int, int]], owner: int = 0) -> list[dict[str, Any]]:
    """One item per (series id, volume id); `owner` keeps item ids apart between users."""
    now = datetime.now(timezone.utc)
    return [{"item_id": f"{owner:04x}{volume_id:020x}", "volume_id": volume_id, "series_id": series_id, "client": 1,
             "price_cents": random.randint(500, 1500),
             "buy_date": f"20{random.randint(10, 24)}-0{random.randint(1, 9)}-1{volume_id % 10}", "added": now}
            for series_id, volume_id in volumes]


def ratings(series_ids: Iterable[int]) -> list[dict[str, Any]]:
    now = datetime.now(timezone.utc)
    return [{"series_id": s, "rating": random.choice([5.0, 6.5, 7.0, 7.5, 8.0, 9.0, 10.0]), "last_update": now}
            for s in series_ids]


def avatar(side: int = 800) -> str:
    """A noisy PNG (noise does not compress, so the upload is as large as a photo's), base64."""
    image = Image.effect_noise((side, side), 40).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return b64(buffer.getvalue())
