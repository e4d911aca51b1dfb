"""The tests' own guard (tests/conftest.py): a worker's test database that stops answering is
killed and started again on its files, as the service's supervisor does for the service's."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pymongo

from storage.embedded import EmbeddedDatabase
from tests.conftest import TestDatabaseWatchdog


def test_a_test_database_that_stops_answering_is_restarted_with_its_data(tmp_path: Path) -> None:
    server = EmbeddedDatabase(tmp_path / "db", log_file=tmp_path / "secantusd.log")
    server.start()
    watchdog = TestDatabaseWatchdog(server, tmp_path, wedged_after_s=2.0, check_every_s=0.5,
                                    answer_within_s=1.0)
    try:
        with pymongo.MongoClient(server.uri) as client:
            client.kept.things.insert_one({"_id": 1})
        watchdog.start()
        assert server.pid is not None
        os.kill(server.pid, signal.SIGSTOP)  # answers nothing, as the stuck server did
        deadline = time.monotonic() + 60
        while watchdog.restarts == 0:
            assert time.monotonic() < deadline, "not restarted within 60 s"
            time.sleep(0.1)
        with pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=10_000) as client:
            assert client.kept.things.find_one({"_id": 1}) == {"_id": 1}
        assert (tmp_path / "stuck-1.txt").exists()
    finally:
        watchdog.stop()
        server.stop()
