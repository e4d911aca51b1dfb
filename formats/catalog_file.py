"""The catalog import file, read twice in memory that follows a chunk of series rather than the
file: a first pass checks all of it (each series' fields, and the ids, slugs and external ids
across the file) and writes nothing; a second hands out its series a chunk at a time for
`storage.catalog.CatalogStore.import_chunks`. The models and the whole-file checks are the
catalog's own (storage.catalog); this module is how a file on disk becomes them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from formats.json_stream import JsonSyntaxError, ObjectStream
from formats.problems import TooLarge, Unreadable
from storage.catalog import (
    CHUNK_SERIES,
    CatalogFile,
    CatalogFileError,
    CatalogSeries,
    Duplicates,
    FileSeries,
)

# A chunk also ends at this many volumes a series, so that memory follows the chunk whatever the
# series hold.
VOLUMES_PER_SERIES = 10
# A series with its volumes, as written in a file, is at most this long (about 50,000 volumes).
MAX_SERIES_CHARS = 16 * 1024 * 1024


def _location(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _first_error(failure: ValidationError, *within: str | int) -> str:
    first = failure.errors(include_url=False)[0]
    where = _location((*within, *first["loc"]))
    message = first["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message



class CatalogFileReader:
    """A catalog file read twice, in memory that follows a chunk of series rather than the file
    (formats.json_stream): `check` validates all of it and writes nothing; `chunks` then hands
    out its series a chunk at a time. The file stays open in between, so that both read one file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file = open(path, encoding="utf-8")
        except OSError as error:
            raise CatalogFileError(f"cannot read {path}: {error.strerror}") from None
        self._checked: tuple[int, int] | None = None

    def __enter__(self) -> CatalogFileReader:
        return self

    def __exit__(self, *_: object) -> None:
        self._file.close()

    def check(self) -> FileSeries:
        """Raises CatalogFileError naming the first bad entry, as validating the whole file at
        once would: the JSON first, then each series' fields, the file's shape, and last the ids
        and slugs that repeat."""
        duplicates = Duplicates()
        bad_series: str | None = None
        repeated: str | None = None
        stream = ObjectStream(self._file, "series", MAX_SERIES_CHARS)
        for i, raw in self._read(stream):
            if bad_series is not None:
                continue  # read on all the same: a file that is not JSON says so first
            try:
                series = CatalogSeries.model_validate(raw)
            except ValidationError as failure:
                bad_series = _first_error(failure, "series", i)
                continue
            if repeated is None:
                try:
                    duplicates.add(i, series)
                except ValueError as error:
                    repeated = str(error)
        if bad_series is not None:
            raise CatalogFileError(bad_series)
        try:
            CatalogFile.model_validate(stream.skeleton)
        except ValidationError as failure:
            raise CatalogFileError(_first_error(failure)) from None
        if repeated is not None:
            raise CatalogFileError(repeated)
        self._checked = self._version()
        return duplicates.series

    def chunks(self, size: int) -> Iterator[list[CatalogSeries]]:
        """After `check` (and before anything is written, which is when the file is compared with
        the one checked): the series, `size` at a time, or fewer when they hold `size` times
        VOLUMES_PER_SERIES volumes (a chunk holds at least one series)."""
        if self._checked is None:
            raise RuntimeError("a catalog file is checked whole before it is read for writing")
        if self._checked != self._version():
            raise CatalogFileError(f"{self.path} changed after it was checked; nothing was written from it")
        return self._chunks(size)

    def _chunks(self, size: int) -> Iterator[list[CatalogSeries]]:
        chunk: list[CatalogSeries] = []
        volumes = 0
        for _, raw in self._read(ObjectStream(self._file, "series", MAX_SERIES_CHARS)):
            series = CatalogSeries.model_validate(raw)  # valid: checked
            chunk.append(series)
            volumes += len(series.volumes)
            if len(chunk) >= size or volumes >= size * VOLUMES_PER_SERIES:
                yield chunk
                chunk, volumes = [], 0
        if chunk:
            yield chunk

    def _read(self, stream: ObjectStream) -> Iterator[tuple[int, Any]]:
        self._file.seek(0)
        try:
            yield from enumerate(stream.elements())
        except JsonSyntaxError as error:
            raise CatalogFileError(f"{self.path} is not valid JSON: {error}") from None
        except UnicodeDecodeError as error:
            raise CatalogFileError(f"{self.path} is not valid JSON: {error}") from None
        except (TooLarge, Unreadable) as error:
            raise CatalogFileError(f"{self.path}: {error}") from None
        except OSError as error:
            raise CatalogFileError(f"cannot read {self.path}: {error.strerror}") from None

    def _version(self) -> tuple[int, int]:
        status = os.fstat(self._file.fileno())
        return status.st_size, status.st_mtime_ns


def read_catalog_file(path: Path) -> CatalogFile:
    """The whole file, checked, in memory: for small files (the demo catalog, tests). Raises
    CatalogFileError naming the first bad entry."""
    with CatalogFileReader(path) as reader:
        reader.check()
        return CatalogFile(series=[series for chunk in reader.chunks(CHUNK_SERIES) for series in chunk])
