"""The benchmark's catalog generator writes a file the catalog import accepts, as it describes it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from bench.__main__ import main as bench_main
from formats.catalog_file import read_catalog_file
from storage.catalog import CatalogStore, ImportCounts


def generate(path: Path, series: int, volumes: int, seed: int = 29) -> Path:
    assert bench_main(["catalog-gen", "--series", str(series), "--volumes", str(volumes), "--seed", str(seed),
                       "--out", str(path)]) == 0
    return path


@pytest.mark.asyncio
async def test_the_generated_catalog_is_imported_whole(tmp_path: Path, db: AsyncDatabase) -> None:
    catalog = read_catalog_file(generate(tmp_path / "catalog.json", 60, 600))
    assert len(catalog.series) == 60
    assert sum(len(s.volumes) for s in catalog.series) == 600
    assert len({s.slug for s in catalog.series}) == 60
    assert all(s.volumes for s in catalog.series)
    assert len({len(s.volumes) for s in catalog.series}) > 3  # the counts vary
    assert any(s.nsfw18 for s in catalog.series) and not all(s.nsfw18 for s in catalog.series)
    assert len({a.language for s in catalog.series for a in s.aliases}) >= 4
    assert len(Counter(s.type for s in catalog.series)) >= 3
    counts = await CatalogStore(db).import_file(catalog)
    assert counts == ImportCounts(series_inserted=60, series_updated=0, volumes_inserted=600, volumes_updated=0)


def test_the_same_seed_gives_the_same_file(tmp_path: Path) -> None:
    first = generate(tmp_path / "a.json", 20, 150).read_bytes()
    assert generate(tmp_path / "b.json", 20, 150).read_bytes() == first
    assert generate(tmp_path / "c.json", 20, 150, seed=30).read_bytes() != first


def test_fewer_volumes_than_series_is_refused(tmp_path: Path) -> None:
    assert bench_main(["catalog-gen", "--series", "10", "--volumes", "5", "--out", str(tmp_path / "x.json")]) == 2
