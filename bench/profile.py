"""`python -m bench.profile [PATH]` (or `python -m bench profile`): where the time of one route goes, in the service and in the
database. The data of `bench perf`; the service and SecantusDB as their own processes, each
sampled by py-spy while wrk sends PATH (default: the name-ordered history) for `SECONDS`.
Prints, for each process, the functions with the most samples (inclusive, and leaf)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench.perf import ensure_wrk, seeded_service, wrk

SECONDS = int(__import__("os").environ.get("PROFILE_SECONDS", "10"))
# `{series}` stands for a series the reader has a status and a rating for, `{user}` for their id.
DEFAULT_PATH = "/user/reading-history?order=name-asc&user_lang=de"
SHOWN = int(__import__("os").environ.get("PROFILE_SHOWN", "12"))
# A folder to keep each process's raw stacks in (py-spy's collapsed format), to read further.
KEEP = __import__("os").environ.get("PROFILE_KEEP")
RATE = 200  # samples per second
# The steps of a request, each recognised by a frame of its stack (the first step that matches
# takes the sample): what each costs per request is its samples / RATE / requests answered.
STEPS = [
    ("authentication (the session read, its driver work included)", ("ApiHandler.authenticate",)),
    ("validation (query and body models)", ("list_parameters", "parse_body", "model_validate")),
    ("answer building (model, JSON, ETag)", ("write_model", "write_json", "entity_tag")),
    ("access log line", ("log_request",)),
    ("metrics", ("Metrics.observe", "RoundTripCounter")),
    ("other database driver work", ("pymongo/",)),
    ("HTTP: parsing, routing, writing (tornado)", ("tornado/",)),
]


def py_spy() -> str:
    return str(Path(sys.executable).with_name("py-spy"))


def summarize(collapsed: Path, requests: int = 0) -> dict[str, Any]:
    """py-spy's collapsed stacks ("a;b;c N") as the top frames, inclusive and leaf; with the
    `requests` answered meanwhile, the microseconds of each step (STEPS) per request."""
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    steps: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        samples = int(count)
        total += samples
        leaf[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
        steps[next((name for name, marks in STEPS if any(mark in stack for mark in marks)), "other (event loop, asyncio)")] \
            += samples
    def share(counter: Counter[str]) -> list[str]:
        return [f"{100 * n / total:5.1f}%  {frame}" for frame, n in counter.most_common(SHOWN)]
    per_request = {name: round(n / RATE / requests * 1e6) for name, n in steps.most_common()} if requests else {}
    return {"samples": total, "inclusive": share(inclusive), "leaf": share(leaf), "microseconds_per_request": per_request}


async def main(path: str = DEFAULT_PATH) -> dict[str, Any]:
    binary = ensure_wrk()
    results: dict[str, Any] = {"path": path}
    async with seeded_service(LOG_LEVEL="warning") as seeded:
        service_pid = seeded.service.process.pid if seeded.service.process else None
        assert service_pid is not None and seeded.server.pid is not None
        path = path.format(series=seeded.rated, user=seeded.user["id"])
        url = seeded.service.base_url + path
        cookie = seeded.client.cookie_header()
        wrk(binary, url, 1, 1, cookie, None)  # warm
        outputs = {"service": seeded.directory / "service.txt", "database": seeded.directory / "database.txt"}
        pids = {"service": service_pid, "database": seeded.server.pid}
        spies = [subprocess.Popen([py_spy(), "record", "--pid", str(pids[who]), "--duration", str(SECONDS),
                                   "--rate", str(RATE), "--format", "raw", "--output", str(out), "--nonblocking"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for who, out in outputs.items()]
        results["load"] = wrk(binary, url, 1, SECONDS, cookie, None)
        for spy in spies:
            spy.wait()
        for who, out in outputs.items():
            if KEEP:
                Path(KEEP).mkdir(parents=True, exist_ok=True)
                (Path(KEEP) / out.name).write_bytes(out.read_bytes())
            answered = round(results["load"]["rps"] * SECONDS)
            results[who] = summary = summarize(out, answered)
            print(f"== {who} ({summary['samples']} samples) while {path} answered "
                  f"{results['load']['rps']:.0f} requests/s at c=1")
            print("inclusive:\n  " + "\n  ".join(summary["inclusive"]))
            print("leaf:\n  " + "\n  ".join(summary["leaf"]))
            print("microseconds per request, by step:\n  " + "\n  ".join(
                f"{us:6d}  {step}" for step, us in summary["microseconds_per_request"].items()), flush=True)
    return results


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:])), indent=1))
