"""Runs SecantusDB as a child process: the embedded default database when MONGODB_URI is unset.

SecantusDB is GPL-2.0 and beta, so it is only ever a separate process, never imported. It runs
with `--auth`: the service connects as a generated SCRAM user whose password is kept in a file
that only the service's user can read, so other local users cannot read the data.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote_plus

from workers import off_the_loop

log = logging.getLogger("tsundoku.embedded")

STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
# The oplog keeps whole documents; uncapped it grows to many times the data (measured on SecantusDB:
# docs/design.md).
OPLOG_MAX_ENTRIES = 20000
OPLOG_RETENTION_S = 3600
# secantusd.log is kept under this, plus one earlier file (secantusd.log.1): a storage engine that
# panicked (a full disk) logs a traceback for every command it fails, megabytes a minute.
LOG_MAX_BYTES = 10 * 1024 * 1024
DATABASE_USER = "tsundoku"
# SecantusDB answers this on a user that exists already.
USER_ALREADY_EXISTS = 51003


class NoDatabaseHere(RuntimeError):
    """An operator command was given a DATA_DIR that holds no database: most likely it runs
    without the service's settings, and would answer about a new, empty database."""


class DataDirOfAnotherUser(RuntimeError):
    """DATA_DIR belongs to another user than the one this process runs as (root, for a command
    on the systemd deployment): what it would write there (the database's journal, the lock) would
    be this user's, and the service, run as the owner, could no longer open its own files."""


def check_owner(data_dir: Path, command: str | None) -> None:
    """Raises DataDirOfAnotherUser unless DATA_DIR and its database's files (where they exist)
    belong to the user this process runs as."""
    for path in (data_dir, data_dir / "db"):
        try:
            owner = path.stat().st_uid
        except FileNotFoundError:
            continue
        if owner != os.geteuid():
            raise DataDirOfAnotherUser(
                f"{path} belongs to {_user_name(owner)} and {command or 'this command'} runs as "
                f"{_user_name(os.geteuid())}: files it wrote there would be {_user_name(os.geteuid())}'s, and the "
                f"service could not open them. Run it as that user, e.g. `runuser -u {_user_name(owner)} -- ...`")


def _user_name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return f"uid {uid}"


class DataDirInUse(RuntimeError):
    """Another service runs on this DATA_DIR: one directory serves one instance."""


class EmbeddedDatabaseError(RuntimeError):
    pass


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def loopback_uri(port: int, credentials: Credentials | None = None) -> str:
    login = ""
    if credentials is not None:
        login = f"{quote_plus(credentials.user)}:{quote_plus(credentials.password)}@"
    suffix = "&authSource=admin" if credentials is not None else ""
    return f"mongodb://{login}127.0.0.1:{port}/?directConnection=true{suffix}"


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


# Runs first in the child, then becomes the server (same pid): if the service dies outright, the
# database is killed instead of living on as an orphan holding the data directory (Linux;
# elsewhere the prctl fails quietly). SIGKILL, not SIGTERM: SecantusDB's SIGTERM handler was seen
# to hang for good (threads in futex waits, minutes later) and leave exactly that orphan, and a
# SIGKILL loses nothing acknowledged (writes are journaled and commits fsynced; the kill tests
# prove it). A launcher instead of `preexec_fn`, which is not safe in a process with threads.
_LAUNCHER = """
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
except Exception:
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)  # the parent died before the prctl
os.execv(sys.argv[2], sys.argv[2:])
"""


def _launched(command: list[str]) -> list[str]:
    return [sys.executable, "-c", _LAUNCHER, str(os.getpid()), *command]


def answers_ping(port: int) -> bool:
    """`ping` needs no authentication, so this works before the user exists."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            pass
    except OSError:
        return False
    from pymongo import MongoClient  # the sync driver, only for probes and provisioning

    client: MongoClient[dict[str, Any]] = MongoClient(loopback_uri(port), serverSelectionTimeoutMS=500)
    try:
        client.admin.command("ping")
        return True
    except Exception:
        return False
    finally:
        client.close()


def describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by signal {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit code {code}"


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str


def credentials_path(data_dir: Path) -> Path:
    return data_dir / "db-credentials.json"


class CredentialsFile:
    """`DATA_DIR/db-credentials.json`, mode 0600: the database user the service and the
    operator commands sign in as. Made once, at the first start on a data directory."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> Credentials | None:
        try:
            record = json.loads(self.path.read_text())
            return Credentials(user=str(record["user"]), password=str(record["password"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @staticmethod
    def generate() -> Credentials:
        return Credentials(user=DATABASE_USER, password=secrets.token_urlsafe(32))

    def save(self, credentials: Credentials) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".tmp")
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        # Created with 0600 from the first byte: the password is never readable by others.
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump({"user": credentials.user, "password": credentials.password}, file)
            file.flush()
            os.fsync(file.fileno())
        partial.replace(self.path)


class EmbeddedDatabase:
    """One SecantusDB process with its files under `storage_dir`, signed into with the
    credentials in `credentials_file`. `test_commands` enables MongoDB's fail points: tests only."""

    def __init__(self, storage_dir: Path, *, log_file: Path | None = None, oplog_capped: bool = True,
                 credentials_file: Path | None = None, test_commands: bool = False) -> None:
        self.storage_dir = storage_dir
        self.log_file = log_file
        self.oplog_capped = oplog_capped
        self.test_commands = test_commands
        self.credentials_file = CredentialsFile(credentials_file or credentials_path(storage_dir.parent))
        self.credentials: Credentials | None = None
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        if self.port is None:
            raise EmbeddedDatabaseError("the embedded database is not running")
        return loopback_uri(self.port, self.credentials)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Starts the server on a free port, first provisioning its user if it has none."""
        self._prepare()
        self._launch(authenticated=True)

    def _prepare(self, given: Credentials | None = None) -> None:
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        # The files hold every password hash too: only the service's user may read them.
        self.storage_dir.chmod(0o700)
        self.port = free_loopback_port()
        self.credentials = None if given is not None else self.credentials_file.read()
        if self.credentials is None:
            self.credentials = self._provision_user(given)

    def restart(self) -> None:
        """Starts the server again on the same files and port, after it exited."""
        self._spawn_again()
        self._wait_until_ready()

    def _spawn_again(self) -> None:
        if self.port is None or self.credentials is None:
            raise EmbeddedDatabaseError("the embedded database was never started")
        self._process = None
        self._spawn(authenticated=True)

    def exit_code(self) -> int | None:
        """The exit status if the process has exited (it is reaped here), else None."""
        return self._process.poll() if self._process is not None else None

    def log_over_cap(self) -> bool:
        try:
            return self.log_file is not None and self.log_file.stat().st_size > LOG_MAX_BYTES
        except OSError:
            return False

    def previous_log(self) -> Path:
        assert self.log_file is not None
        return self.log_file.with_name(self.log_file.name + ".1")

    def rotate_log(self) -> None:
        """Moves a log over LOG_MAX_BYTES to `.1` (replacing the one before), while the server is
        not running: it writes to the new file when it starts."""
        if self.log_over_cap():
            assert self.log_file is not None
            self.log_file.replace(self.previous_log())

    def rotate_running_log(self) -> None:
        """Copies a log over LOG_MAX_BYTES to `.1`, then empties it: the running server keeps its
        descriptor (opened for appending, so it writes on at the new end). Lines written between
        the copy and the truncation are lost. When the copy fails (the disk is full), the log is
        emptied anyway: a full disk is the likeliest reason it grew."""
        if not self.log_over_cap():
            return
        assert self.log_file is not None
        previous = self.previous_log()
        try:
            shutil.copyfile(self.log_file, previous)
        except OSError as error:
            with contextlib.suppress(OSError):
                previous.unlink()
            log.warning("could not keep %s (%s); emptying it", self.log_file, error.strerror)
        try:
            os.truncate(self.log_file, 0)
        except OSError as error:
            log.warning("could not empty %s: %s", self.log_file, error.strerror)

    def log_tail(self, lines: int = 20) -> str:
        if self.log_file is None:
            return "(no log file)"
        try:
            with open(self.log_file, "rb") as file:
                file.seek(max(0, os.path.getsize(self.log_file) - 64 * 1024))
                tail = deque(file.read().decode("utf-8", "replace").splitlines(), maxlen=lines)
        except OSError as error:
            return f"(cannot read {self.log_file}: {error.strerror})"
        return "\n".join(tail) or "(the log is empty)"

    def _provision_user(self, given: Credentials | None = None) -> Credentials:
        """Without --auth, creates (or resets) the service's user, then stops the server.

        This runs once per data directory, before any data exists on a new one; the server
        listens only on loopback for the second it takes. A data directory from before --auth
        is provisioned the same way at its first start with this version."""
        self._launch(authenticated=False)
        credentials = given or self.credentials_file.generate()
        from pymongo import MongoClient

        client: MongoClient[dict[str, Any]] = MongoClient(loopback_uri(self.port or 0), serverSelectionTimeoutMS=5000)
        try:
            roles = [{"role": "root", "db": "admin"}]
            try:
                client.admin.command("createUser", credentials.user, pwd=credentials.password, roles=roles)
            except Exception as error:
                if getattr(error, "code", None) != USER_ALREADY_EXISTS:
                    raise
                client.admin.command("updateUser", credentials.user, pwd=credentials.password, roles=roles)
        finally:
            client.close()
            self.stop()
        # Saved only once the server knows the password: a crash before this provisions again.
        self.credentials_file.save(credentials)
        if given is None:
            log.info("created the embedded database's user; its password is in %s", self.credentials_file.path)
        return credentials

    def _launch(self, *, authenticated: bool) -> None:
        self._spawn(authenticated=authenticated)
        self._wait_until_ready()

    def _spawn(self, *, authenticated: bool) -> None:
        assert self.port is not None
        command = [
            _server_executable(),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--storage-path", str(self.storage_dir),
            "--log-level", "WARNING",
            # Measured: without it, a transaction acknowledged with j=True was lost on SIGKILL
            # (plain writes were not). With it every commit is fsynced; it cost 0.5 ms per
            # transaction and nothing measurable on plain writes here.
            "--sync-on-commit",
        ]
        if authenticated:
            command.append("--auth")
        if self.test_commands:
            command.append("--enable-test-commands")
        if self.oplog_capped:
            command += [
                "--oplog-max-entries", str(OPLOG_MAX_ENTRIES),
                "--oplog-retention-seconds", str(OPLOG_RETENTION_S),
            ]
        if self.log_file:
            with contextlib.suppress(OSError):
                self.rotate_log()
        # Appending (O_APPEND) also lets rotate_running_log empty the file under the running server.
        output = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        try:
            self._process = subprocess.Popen(
                _launched(command),
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            if not isinstance(output, int):  # the log file, not DEVNULL
                output.close()

    def _wait_until_ready(self) -> None:
        assert self._process is not None and self.port is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                where = f"; see {self.log_file}" if self.log_file else ""
                raise EmbeddedDatabaseError(
                    f"SecantusDB exited with {describe_exit(self._process.returncode)} at start{where}"
                )
            if answers_ping(self.port):
                return
            time.sleep(0.1)
        self.stop()
        raise EmbeddedDatabaseError(f"SecantusDB did not answer within {STARTUP_TIMEOUT_S:.0f} s")

    # The blocking parts run in a worker thread; the server itself is spawned from the calling
    # (event loop) thread, which lives as long as the service: the child's parent-death signal
    # belongs to the thread that forked it, and a worker thread can end before the service does.
    async def start_async(self) -> None:
        await off_the_loop(None, self._prepare)
        self._spawn(authenticated=True)
        await off_the_loop(None, self._wait_until_ready)

    async def start_new_async(self, credentials: Credentials) -> None:
        """Starts a new, empty database whose user signs in with `credentials` (another
        database's: see storage.compaction), not with new ones."""
        await off_the_loop(None, self._prepare, credentials)
        self._spawn(authenticated=True)
        await off_the_loop(None, self._wait_until_ready)

    async def restart_async(self) -> None:
        self._spawn_again()
        await off_the_loop(None, self._wait_until_ready)

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
        await off_the_loop(None, self.stop)

    def kill(self) -> None:
        """SIGKILL, for a server that runs but no longer serves (a stopped or panicked one would
        not act on SIGTERM); it loses nothing acknowledged. The process is reaped here."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.kill()
        process.wait()

    async def kill_async(self) -> None:
        await off_the_loop(None, self.kill)


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

    def live_port(self) -> int | None:
        live = self._live()
        return live[1] if live else None

    def live_pid(self) -> int | None:
        """The process id of a service running on this directory (whose database answers)."""
        live = self._live()
        return live[0] if live else None

    def _live(self) -> tuple[int, int] | None:
        try:
            record = json.loads(self.path.read_text())
            pid, port = int(record["pid"]), int(record["port"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        try:
            os.kill(pid, 0)
        except OSError:
            return None
        return (pid, port) if answers_ping(port) else None


class DataDirLock:
    """`DATA_DIR/embedded.lock`: whoever starts the embedded database on a directory (the service
    or an operator command) holds an exclusive lock on it, and has written into it who it is.
    SecantusDB refuses files another server has open, but only says "exit code 1 at start";
    this check comes first and names the holder. A lock, not a pid file: the kernel lets go of
    it when its process ends however it ends, so a crash leaves nothing stale."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "embedded.lock"
        self._file: IO[str] | None = None

    def acquire(self, holder: str) -> None:
        """Takes the lock for `holder` (e.g. "a Tsundoku service", "the operator command 'backup'"),
        or raises DataDirInUse naming whoever has it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = open(self.path, "a+")  # not inherited (PEP 446): the SecantusDB child never holds it
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            record = file.read()
            file.close()
            raise DataDirInUse(f"{self._describe(record)} is using DATA_DIR {self.path.parent}: one DATA_DIR "
                               "serves one instance. Wait until that one ends, or give this one its own "
                               "DATA_DIR (or MONGODB_URI)") from None
        file.seek(0)
        file.truncate()
        file.write(json.dumps({"pid": os.getpid(), "holder": holder}))
        file.flush()
        self._file = file

    @staticmethod
    def _describe(record: str) -> str:
        try:
            fields = json.loads(record)
            return f"{fields['holder']} (PID {int(fields['pid'])})"
        except (ValueError, KeyError, TypeError):
            return "another process"  # it holds the lock but has not written its name yet

    def release(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()  # which releases the lock; the file stays, its content is overwritten next time
