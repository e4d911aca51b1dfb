"""`python -m bench logins`: a real user's login (from its own address) while one other address
sends 300 failed logins, each with a new unknown username, with argon2's production costs: all
at once, then (from another address) 4 at a time. Before the per-address limit and the hashing
bound, every one of the 300 was hashed and the user's login waited behind them."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections import Counter
from typing import Any

from tornado.httpclient import AsyncHTTPClient
from tornado.netutil import Resolver

from auth.passwords import Passwords
from bench.harness import bench_service, machine, summary, timed
from settings import Settings

FLOOD = 300
FLOODING_ADDRESS = "203.0.113.7"
SECOND_FLOODING_ADDRESS = "203.0.113.8"
USER_ADDRESS = "198.51.100.20"
PASSWORD = "correct horse battery"


class LiteralResolver(Resolver):
    """127.0.0.1 as itself: Tornado's default resolver runs in the default thread pool, which the
    service in this same process may be filling with hashes; the benchmark measures the service."""

    async def resolve(self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC,
                      ) -> list[tuple[int, Any]]:
        return [(socket.AF_INET, (host, port))]


async def login(http: AsyncHTTPClient, base_url: str, username: str, password: str, address: str) -> int:
    response = await http.fetch(base_url + "/auth/login", method="POST", raise_error=False, request_timeout=600,
                                body=json.dumps({"username": username, "password": password}),
                                headers={"Content-Type": "application/json", "X-Forwarded-For": address})
    return response.code


async def main() -> None:
    print(machine())
    settings = Settings(cookie_secure=False, trust_proxy=True)
    async with bench_service(settings, passwords=Passwords()) as bench:
        # Separate clients: Tornado's shared one runs 10 requests at a time, which would queue
        # the user's login behind the flood inside the benchmark itself.
        flood_http = AsyncHTTPClient(force_instance=True, max_clients=FLOOD, resolver=LiteralResolver())
        user_http = AsyncHTTPClient(force_instance=True, max_clients=2, resolver=LiteralResolver())
        registered = await user_http.fetch(bench.base_url + "/auth/register", method="POST", raise_error=False,
                                           body=json.dumps({"username": "alice", "password": PASSWORD}),
                                           headers={"Content-Type": "application/json"})
        assert registered.code == 201, registered.body

        async def user_login() -> None:
            assert await login(user_http, bench.base_url, "alice", PASSWORD, USER_ADDRESS) == 200

        print(f"alone: {summary(await timed(user_login, 10))}")

        async def flood_while_the_user_signs_in(label: str, address: str, at_once: int) -> None:
            """FLOOD failed logins from `address`, `at_once` at a time, while the user signs in
            again and again from their own address."""
            started = time.perf_counter()
            gate = asyncio.Semaphore(at_once)

            async def one(n: int) -> int:
                async with gate:
                    return await login(flood_http, bench.base_url, f"nobody{n:04}", "wrong password", address)

            flood = [asyncio.ensure_future(one(n)) for n in range(FLOOD)]
            await asyncio.sleep(0.05)  # the flood's requests are in the server before the user's
            during: list[float] = []
            answers: Counter[int] = Counter()
            while not all(task.done() for task in flood) or len(during) < 5:
                begun = time.perf_counter()
                answers[await login(user_http, bench.base_url, "alice", PASSWORD, USER_ADDRESS)] += 1
                during.append((time.perf_counter() - begun) * 1000)
            statuses = Counter(await asyncio.gather(*flood))
            print(f"{label}: the user {summary(during)}, first {during[0]:.0f} ms, worst {max(during):.0f} ms, "
                  f"answers {dict(sorted(answers.items()))}; the flood {dict(sorted(statuses.items()))} "
                  f"in {time.perf_counter() - started:.1f} s")

        await flood_while_the_user_signs_in(f"{FLOOD} at once", FLOODING_ADDRESS, FLOOD)
        # Within the hashing queue's share of one address: the address's own limit does the work.
        await flood_while_the_user_signs_in(f"{FLOOD}, 4 at a time", SECOND_FLOODING_ADDRESS, 4)
        flood_http.close()
        user_http.close()
