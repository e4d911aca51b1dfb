"""`python -m bench.catalog_latency DATA_DIR CATALOG_FILE [SECONDS]` (on request): the catalog
routes' latency at MangaDex scale, p50 and p99 at 1 and 32 clients (issue 29's table).

DATA_DIR holds a database the catalog in CATALOG_FILE (a `bench catalog-gen` file, one series a
line) was imported into; the service is started on it (nothing is written but what a start
writes). Each load is a mix of paths wrk cycles through, drawn from 500 series sampled from the
file, so that no answer is one cached page: pages of the whole catalog by name and by added date
(offsets 0 to 2,000: the first hundred pages), a search for a word of a series' English title
(its longest, the word someone looking for it types) and for the commonest words, a quick-search for the first 3 to 10
characters of a series' name (autocomplete as someone types), a series' volumes (the first 20)
and a series page. Every request is anonymous: 18+ series are hidden, as for most visitors."""

from __future__ import annotations

import asyncio
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.harness import machine
from bench.perf import ensure_wrk, wrk
from tests.service_process import ServiceProcess

SAMPLE = 500
CONCURRENCY = (1, 32)


def sample_series(path: Path, count: int = SAMPLE, seed: int = 29) -> list[dict[str, Any]]:
    """`count` series drawn evenly (reservoir sampling) from a file of one series a line, without
    reading it whole."""
    rng = random.Random(seed)
    chosen: list[dict[str, Any]] = []
    seen = 0
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            line = line.strip().rstrip(",")
            if not line.startswith('{"id"'):
                continue
            seen += 1
            if len(chosen) < count:
                chosen.append(json.loads(line))
            elif (slot := rng.randrange(seen)) < count:
                chosen[slot] = json.loads(line)
    return chosen


def loads(series: list[dict[str, Any]], seed: int = 29) -> dict[str, list[str]]:
    rng = random.Random(seed)
    offsets = [20 * rng.randrange(100) for _ in series]
    visible = [s for s in series if not s.get("nsfw18")]

    def english_word(s: dict[str, Any]) -> str:
        title = next((a["title"] for a in s["aliases"] if a["language"] == "English"), s["name"])
        return quote(max(re.findall(r"[^\W_]+", title), key=len))

    return {
        "GET /series by name": [f"/series?client=1&order=name-asc&limit=20&offset={o}" for o in offsets],
        "GET /series by added date": [f"/series?client=1&order=added-desc&limit=20&offset={o}" for o in offsets],
        "GET /series search": [f"/series?client=1&limit=20&search={english_word(s)}"
                               for s in visible],
        # The words most titles share (the generator's commonest): the worst a search meets.
        "GET /series search, a common word": [f"/series?client=1&limit=20&search={word}"
                                              for word in ("Blade", "Moon", "Shadow", "Academy", "Dragon", "Tsuki")],
        "GET /series/quick-search": [f"/series/quick-search?limit=10&search={quote(s['name'][:rng.randint(3, 10)])}"
                                     for s in visible],
        "GET /series/volumes/:id": [f"/series/volumes/{s['id']}?limit=20" for s in visible],
        "GET /series/slug/:slug": [f"/series/slug/{s['slug']}" for s in visible],
    }


def script(directory: Path, name: str, paths: list[str]) -> Path:
    """A wrk script that cycles through `paths` (each wrk thread from its own start)."""
    path = directory / (re.sub(r"\W+", "-", name).strip("-") + ".lua")
    path.write_text("paths = {" + ",".join(json.dumps(p) for p in paths) + "}\n"
                    "i = 0\n"
                    "request = function()\n"
                    "  i = i + 1\n"
                    "  return wrk.format(\"GET\", paths[(i % #paths) + 1])\n"
                    "end\n")
    return path


async def main(data_dir: str, catalog: str, seconds: int | str = 10) -> dict[str, Any]:
    seconds = int(seconds)
    binary = ensure_wrk()
    results: dict[str, Any] = {"machine": machine()}
    mix = loads(sample_series(Path(catalog)))
    service = ServiceProcess(Path(data_dir))
    started = time.perf_counter()
    await service.start()
    results["service_start_seconds"] = round(time.perf_counter() - started, 1)
    try:
        with tempfile.TemporaryDirectory() as directory:
            for name, paths in mix.items():
                lua = script(Path(directory), name, paths)
                wrk(binary, service.base_url + paths[0], 2, 2, "", lua)  # warm: every path once or more
                for clients in CONCURRENCY:
                    measured = wrk(binary, service.base_url + paths[0], clients, seconds, "", lua)
                    results[f"{name} c={clients}"] = measured
                    print(f"{name:28} c={clients:<3} p50 {measured['p50']} ms  p99 {measured['p99']} ms  "
                          f"{measured['rps']:.0f}/s  errors {measured['errors']}", flush=True)
            rss = subprocess.run(["ps", "-o", "rss=", "-p", str(service.process.pid)] if service.process else ["true"],
                                 capture_output=True, text=True).stdout.strip()
            results["service_rss_mb"] = round(int(rss) / 1024) if rss else None
    finally:
        await service.stop()
    print(results)
    return results


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
