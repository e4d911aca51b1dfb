"""Runs SecantusDB as a child process: the embedded default database when MONGODB_URI is unset.

SecantusDB is GPL-2.0 and beta, so it is only ever a separate process, never imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger("tsundoku.embedded")

STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
# The oplog keeps whole documents; uncapped it grows to many times the data (DATABASE.md).
OPLOG_MAX_ENTRIES = 20000
OPLOG_RETENTION_S = 3600


class EmbeddedDatabaseError(RuntimeError):
    pass


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_executable() -> str:
    beside_python = Path(sys.executable).parent / "secantusd-py"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("secantusd-py")
    if found is None:
        raise EmbeddedDatabaseError(
            "secantusd-py not found: install the requirements (pip install -r requirements.txt) "
            "or set MONGODB_URI"
        )
    return found


def _die_with_parent() -> None:
    # Linux only: if the service is killed outright, the database child gets SIGTERM
    # instead of living on as an orphan holding the data directory.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            pass
    except OSError:
        return False
    from pymongo import MongoClient  # the sync driver, only for this readiness probe

    client: MongoClient = MongoClient(
        f"mongodb://127.0.0.1:{port}/?directConnection=true", serverSelectionTimeoutMS=500
    )
    try:
        client.admin.command("ping")
        return True
    except Exception:
        return False
    finally:
        client.close()


class EmbeddedDatabase:
    """One SecantusDB process with its files under `storage_dir`."""

    def __init__(self, storage_dir: Path, *, log_file: Path | None = None, oplog_capped: bool = True) -> None:
        self.storage_dir = storage_dir
        self.log_file = log_file
        self.oplog_capped = oplog_capped
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        if self.port is None:
            raise EmbeddedDatabaseError("the embedded database is not running")
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self) -> None:
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_loopback_port()
        command = [
            _server_executable(),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--storage-path", str(self.storage_dir),
            "--log-level", "WARNING",
        ]
        if self.oplog_capped:
            command += [
                "--oplog-max-entries", str(OPLOG_MAX_ENTRIES),
                "--oplog-retention-seconds", str(OPLOG_RETENTION_S),
            ]
        output = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        try:
            self._process = subprocess.Popen(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
        finally:
            if self.log_file:
                output.close()  # type: ignore[union-attr]
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        assert self._process is not None and self.port is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                where = f"; see {self.log_file}" if self.log_file else ""
                raise EmbeddedDatabaseError(
                    f"SecantusDB exited with code {self._process.returncode} at start{where}"
                )
            if _answers_ping(self.port):
                return
            time.sleep(0.1)
        self.stop()
        raise EmbeddedDatabaseError(f"SecantusDB did not answer within {STARTUP_TIMEOUT_S:.0f} s")

    async def start_async(self) -> None:
        await asyncio.to_thread(self.start)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.warning("SecantusDB did not stop within %.0f s; killing it", STOP_TIMEOUT_S)
            process.kill()
            process.wait()

    async def stop_async(self) -> None:
        await asyncio.to_thread(self.stop)


class RunningServerFile:
    """`DATA_DIR/embedded.json` says which port a running service's database listens on, so
    that the CLI commands reuse it instead of starting a second server on the same files."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "embedded.json"

    def write(self, port: int) -> None:
        self.path.write_text(json.dumps({"pid": os.getpid(), "port": port}))

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def live_uri(self) -> str | None:
        try:
            record = json.loads(self.path.read_text())
            pid, port = int(record["pid"]), int(record["port"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        try:
            os.kill(pid, 0)
        except OSError:
            return None
        if not _answers_ping(port):
            return None
        return f"mongodb://127.0.0.1:{port}/?directConnection=true"
