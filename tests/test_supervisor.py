"""The embedded database's supervisor without a database: when failed write probes make it say
"not serving" and when they make it restart the database, and how the database's log is capped."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from pymongo.errors import NetworkTimeout, OperationFailure

import storage.embedded as embedded
from storage.embedded import EmbeddedDatabase
from storage.supervisor import (
    FAILED_PROBES_TO_RESTART,
    NOT_SERVING_RESTART_AFTER_S,
    PROBE_INTERVAL_S,
    DatabaseState,
    EmbeddedSupervisor,
    ProbeVerdict,
)


def test_probes_answered_with_errors_restart_only_after_several_failures_over_several_seconds() -> None:
    verdict = ProbeVerdict()
    verdict.failed(started_at=100.0, error="OperationFailure: internal server error")
    assert not verdict.serving and not verdict.restart_due(100.0)
    # Failures a second apart: enough of them, but not yet for long enough.
    for second in range(1, FAILED_PROBES_TO_RESTART):
        verdict.failed(started_at=100.0 + second, error="OperationFailure: internal server error")
    assert verdict.failures == FAILED_PROBES_TO_RESTART
    assert not verdict.restart_due(100.0 + NOT_SERVING_RESTART_AFTER_S - 0.1)
    assert verdict.restart_due(100.0 + NOT_SERVING_RESTART_AFTER_S)


def test_a_probe_that_succeeds_in_between_starts_the_count_again() -> None:
    verdict = ProbeVerdict()
    for second in range(FAILED_PROBES_TO_RESTART - 1):
        verdict.failed(started_at=float(second), error="NetworkTimeout: timed out")
    verdict.succeeded()
    assert verdict.serving
    verdict.failed(started_at=10.0, error="NetworkTimeout: timed out")
    assert not verdict.restart_due(10.0 + NOT_SERVING_RESTART_AFTER_S * 10)  # one failure is never enough
    assert verdict.failing_since == 10.0


def test_probes_that_time_out_count_from_when_the_first_began() -> None:
    # A hung database: each probe waits its 3 s bound, then the next begins a second later.
    verdict = ProbeVerdict()
    verdict.failed(started_at=0.0, error="NetworkTimeout")
    verdict.failed(started_at=4.0, error="NetworkTimeout")
    assert not verdict.restart_due(7.0)
    verdict.failed(started_at=8.0, error="NetworkTimeout")
    assert verdict.restart_due(11.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def poll_once(supervisor: EmbeddedSupervisor, clock: Clock) -> bool:
    """One poll: starts the probe that is due, lets it run, and one more poll takes its outcome."""
    clock.now += PROBE_INTERVAL_S
    if supervisor._probe_step():
        return True
    await asyncio.sleep(0)
    return supervisor._probe_step()


@pytest.mark.asyncio
async def test_the_supervisor_says_unavailable_from_the_first_failed_probe_and_decides_to_restart(
    tmp_path: Path,
) -> None:
    clock = Clock()
    outcomes: list[BaseException | None] = []

    async def probe(timeout_s: float) -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    supervisor = EmbeddedSupervisor(EmbeddedDatabase(tmp_path / "db"), clock=clock)  # never started
    supervisor._probe = probe

    async def step() -> bool:
        return await poll_once(supervisor, clock)

    outcomes.append(None)
    assert not await step()
    assert supervisor.available and supervisor.state is DatabaseState.RUNNING

    panicked = OperationFailure("internal server error", code=1)
    outcomes += [panicked] * 10
    assert not await step()
    assert supervisor.state is DatabaseState.NOT_SERVING and not supervisor.available
    assert supervisor.describe()["state"] == "not-serving"
    decided = [await step() for _ in range(8)]
    # Restarted once the failures span NOT_SERVING_RESTART_AFTER_S (a probe a second), not at the
    # first FAILED_PROBES_TO_RESTART of them.
    assert (decided.index(True) + 1) * PROBE_INTERVAL_S == NOT_SERVING_RESTART_AFTER_S
    assert supervisor.verdict.failures > FAILED_PROBES_TO_RESTART
    assert supervisor.verdict.last_error == "OperationFailure: internal server error"

    # A probe that succeeds before that puts it back to running.
    supervisor.verdict.succeeded()
    supervisor.state = DatabaseState.NOT_SERVING
    outcomes[:] = [None]
    assert not await step()
    assert supervisor.available


@pytest.mark.asyncio
async def test_no_probe_runs_while_the_service_prepares_its_database(tmp_path: Path) -> None:
    clock = Clock()
    probed: list[float] = []

    async def probe(timeout_s: float) -> None:
        probed.append(clock.now)
        raise OperationFailure("busy building an index", code=1)

    supervisor = EmbeddedSupervisor(EmbeddedDatabase(tmp_path / "db"), clock=clock)  # never started
    supervisor._probe = probe
    with supervisor.probes_held():
        for _ in range(int(NOT_SERVING_RESTART_AFTER_S / PROBE_INTERVAL_S) * 3):
            clock.now += PROBE_INTERVAL_S
            assert not supervisor._probe_step()  # never a restart
            await asyncio.sleep(0)
    assert probed == [] and supervisor.available
    clock.now += PROBE_INTERVAL_S
    supervisor._probe_step()
    await asyncio.sleep(0)
    assert probed == [clock.now]  # probing resumes an interval after


def write_over_cap(descriptor: int, size: int) -> None:
    os.write(descriptor, b"x" * size)


def test_the_log_is_moved_aside_at_start_when_over_its_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded, "LOG_MAX_BYTES", 1000)
    log_file = tmp_path / "secantusd.log"
    log_file.write_bytes(b"old\n" * 300)
    database = EmbeddedDatabase(tmp_path / "db", log_file=log_file)
    database.rotate_log()
    assert not log_file.exists()
    assert (tmp_path / "secantusd.log.1").stat().st_size == 1200
    log_file.write_bytes(b"small")
    database.rotate_log()  # under the cap: left alone
    assert log_file.read_bytes() == b"small"


def test_a_running_servers_log_is_copied_aside_and_emptied_when_over_its_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded, "LOG_MAX_BYTES", 1000)
    log_file = tmp_path / "secantusd.log"
    # The server's descriptor, opened the way the server's output is (appending).
    server = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        write_over_cap(server, 1500)
        database = EmbeddedDatabase(tmp_path / "db", log_file=log_file)
        assert database.log_over_cap()
        database.rotate_running_log()
        assert (tmp_path / "secantusd.log.1").stat().st_size == 1500
        assert log_file.stat().st_size == 0
        os.write(server, b"after\n")  # the server writes on, at the new end: no hole of 1500 bytes
        assert log_file.read_bytes() == b"after\n"
        write_over_cap(server, 2000)
        database.rotate_running_log()  # the next time replaces the earlier copy: two files at most
        assert (tmp_path / "secantusd.log.1").stat().st_size == 2006
        assert sorted(path.name for path in tmp_path.iterdir()) == ["secantusd.log", "secantusd.log.1"]
    finally:
        os.close(server)


@pytest.mark.asyncio
async def test_a_probe_that_times_out_while_other_writes_are_acknowledged_is_a_busy_database(tmp_path: Path) -> None:
    # Found by a soak: writes waited 4 s on a saturated database, the probe's 3 s ran out, and
    # every request answered 503 for a few seconds, about once a minute (36% of 60,000 requests).
    clock = Clock()
    supervisor = EmbeddedSupervisor(EmbeddedDatabase(tmp_path / "db"), clock=clock)  # never started
    acknowledged = True

    async def probe(timeout_s: float) -> None:
        clock.now += 0.5
        if acknowledged:
            supervisor.write_acknowledged()  # a request's write, while the probe waits its turn
        clock.now += timeout_s - 0.5
        raise NetworkTimeout("127.0.0.1:1: timed out")

    supervisor._probe = probe

    async def step() -> bool:
        return await poll_once(supervisor, clock)

    for _ in range(10):
        assert not await step()
        assert supervisor.state is DatabaseState.RUNNING and supervisor.verdict.failures == 0
    acknowledged = False  # nothing is acknowledged any more: hung
    assert not await step()
    assert supervisor.state is DatabaseState.NOT_SERVING
    assert any([await step() for _ in range(5)])  # restarted, as before
