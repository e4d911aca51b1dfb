"""`python -m bench.credentials`: what each credential costs (issue 30). The same service, user and
routes as `bench perf`, asked with the session cookie, an access token and a personal token in
turn, alternated round by round: requests/s, p50 and p99 of each, and each token's ratio to the
cookie. All three are checked in the one read of the user's document (asserted by the tests); what
differs is the work in the process: a SHA-256 for the cookie and the personal token, an HS256
verification for the access token. (`GET /auth/me` is not measured here: a personal token is refused
there, and with the cookie it signs a new access token each time: `bench perf` measures it.)
"""

from __future__ import annotations

import asyncio
import statistics
import sys
from typing import Any

from bench.harness import machine
from bench.perf import ROUNDS, SECONDS, STATUS_BODY, WARMUP_SECONDS, ensure_wrk, ms, post_script, seeded_service, wrk

LOADS = [
    ("GET /user/me", "/user/me", None, 1),
    ("GET /user/reading-status/id/:id", "/user/reading-status/id/{series}", None, 1),
    ("GET /user/reading-status/id/:id", "/user/reading-status/id/{series}", None, 32),
    ("GET /user/reading-history (update-desc)", "/user/reading-history", None, 1),
    ("POST /user/reading-status/update/:id", "/user/reading-status/update/{series}", STATUS_BODY, 1),
]


async def main() -> dict[str, Any]:
    binary = ensure_wrk()
    results: dict[str, Any] = {"machine": machine(), "rows": []}
    async with seeded_service() as seeded:
        client = seeded.client
        login = await client.login("reader")
        made = await client.post("/auth/tokens", {"name": "bench", "scopes": ["write"], "expires_in_days": 1})
        assert login.status == 200 and made.status == 201, (login.body, made.body)
        # The cookie of the bench's first login stays the cookie credential; the tokens ride alone.
        credentials = {"cookie": (client.cookie_header(), ()),
                       "access token": ("", (f"Authorization: Bearer {login.body['accessToken']}",)),
                       "personal token": ("", (f"Authorization: Bearer {made.body['token']}",))}
        print(f"{machine()}; wrk, {ROUNDS} alternated rounds of {SECONDS} s (an access token lives 15 minutes: "
              "the run takes less)", flush=True)
        print("| route | c | cookie rps | p50 / p99 ms | access token rps | p50 / p99 ms | ratio | "
              "personal token rps | p50 / p99 ms | ratio |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name, template, body, concurrency in LOADS:
            url = seeded.service.base_url + template.format(series=seeded.rated)
            script = post_script(seeded.directory, body) if body is not None else None
            runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in credentials}
            for cookie, headers in credentials.values():
                wrk(binary, url, concurrency, WARMUP_SECONDS, cookie, script, headers)
            for _ in range(ROUNDS):
                for kind, (cookie, headers) in credentials.items():
                    runs[kind].append(wrk(binary, url, concurrency, SECONDS, cookie, script, headers))
            row = {"route": name, "c": concurrency, **{kind: median_run(found) for kind, found in runs.items()}}
            assert all(row[kind]["errors"] == 0 for kind in credentials), row
            results["rows"].append(row)
            cookie_rps = row["cookie"]["rps"]
            cells = [f"{row[kind]['rps']:.0f} | {ms(row[kind]['p50'])} / {ms(row[kind]['p99'])}"
                     + ("" if kind == "cookie" else f" | {row[kind]['rps'] / cookie_rps:.2f}")
                     for kind in credentials]
            print(f"| {name} | {concurrency} | " + " | ".join(cells) + " |", flush=True)
    return results


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(runs, key=lambda run: run["rps"])[len(runs) // 2] | {
        "rps": statistics.median(run["rps"] for run in runs)}


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
