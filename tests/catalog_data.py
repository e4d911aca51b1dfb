"""Small catalogs for tests, loaded through the real import code."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from storage.catalog import CatalogFile, CatalogStore, ImportCounts


def series(
    id: int,
    name: str,
    *,
    en: str | None = None,
    de: str | None = None,
    client: int = 1,
    volumes: list[dict[str, Any]] | None = None,
    descriptions: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    aliases = [{"title": t, "language": lang} for t, lang in ((en, "English"), (de, "German")) if t]
    return {
        "id": id, "name": name, "type": "Manga", "slug": f"series-{id}", "client": client, "origin": "Japanese",
        "aliases": aliases,
        "descriptions": [{"description": d, "language": lang} for lang, d in (descriptions or {}).items()],
        "volumes": volumes if volumes is not None else [volume(id * 10 + 1, 1)],
        **extra,
    }


def volume(id: int, order: int | None, **extra: Any) -> dict[str, Any]:
    return {"id": id, "name": f"Volume {order}", "group_order": order, "language": "German",
            "release_date": "2020-01-01", "pages": 200, "cover_path": f"/covers/{id}.jpg", "aspect_ratio": 0.7,
            **extra}


# The catalog of a module that names none (tests/conftest.py's `catalog` fixture).
TWO_SERIES = [series(1, "Yotsuba to!"), series(2, "Berserk")]


async def load_catalog(db: AsyncDatabase, entries: list[dict[str, Any]]) -> ImportCounts:
    return await CatalogStore(db).import_file(CatalogFile.model_validate({"series": entries}))
