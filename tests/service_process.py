"""Runs `python server.py` as its own process, as an operator would."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tornado.simple_httpclient import HTTPTimeoutError

from storage.embedded import free_loopback_port
from tests.api_client import ApiClient

ROOT = Path(__file__).resolve().parent.parent
# Sets the open-file limit, then becomes the given command (same pid): no `preexec_fn`, which is
# not safe in a process with threads.
_WITH_FILE_LIMIT = ("import os, resource, sys; limit = int(sys.argv[1]); "
                    "resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)); os.execv(sys.argv[2], sys.argv[2:])")


def service_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB_", "PORT", "DATA_DIR"))}
    # A free port unless the test names one: a service that gets as far as listening never takes
    # the default 4545 (busy whenever `make run` is up here, or in another run of the suite).
    env.update({"DATA_DIR": str(data_dir), "PORT": str(free_loopback_port()), "COOKIE_SECURE": "false",
                "LOG_LEVEL": "info"})
    env.update(extra)
    return env


def run_command(args: list[str], env: dict[str, str], timeout: float = 60,
                input: str | None = None) -> subprocess.CompletedProcess[str]:
    """`input` is the command's standard input (else none: it reads an empty one)."""
    return subprocess.run([sys.executable, "server.py", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, input=input if input is not None else "")


class ServiceProcess:
    def __init__(self, data_dir: Path, *, open_file_limit: int | None = None, **extra_env: str) -> None:
        # The service's (and its database's) RLIMIT_NOFILE, soft and hard, when set.
        self.open_file_limit = open_file_limit
        self.port = free_loopback_port()
        self.env = service_env(data_dir, PORT=str(self.port), **extra_env)
        self.process: subprocess.Popen[str] | None = None
        self.base_url = f"http://127.0.0.1:{self.port}"

    async def start(self, attempts: int = 600) -> None:
        """Waits for /health, `attempts` tenths of a second (and the answers' own waits): a start
        that builds a large catalog's layout (bench.catalog_list) takes minutes."""
        self.log = open(Path(self.env["DATA_DIR"]).parent / f"service-{self.port}.log", "w")
        command = [sys.executable, "server.py"]
        if self.open_file_limit:
            command = [sys.executable, "-c", _WITH_FILE_LIMIT, str(self.open_file_limit), *command]
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                        text=True)
        client = ApiClient(self.base_url)
        for _ in range(attempts):
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited with {self.process.returncode}: {self.output()}")
            try:
                if (await client.get("/health")).status == 200:
                    return
            except (OSError, HTTPTimeoutError):  # not listening yet, or listening before it serves
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError("service did not become healthy")

    def client(self) -> ApiClient:
        return ApiClient(self.base_url)

    def signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    async def wait(self, timeout: float = 30) -> int:
        assert self.process is not None
        code = await asyncio.to_thread(self.process.wait, timeout)
        self.log.close()
        return code

    async def stop(self) -> int:
        self.signal(signal.SIGTERM)
        return await self.wait()

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return Path(self.log.name).read_text()


@asynccontextmanager
async def running_service(data_dir: Path, *, open_file_limit: int | None = None,
                          **extra_env: str) -> AsyncIterator[ServiceProcess]:
    """A started service that must stop cleanly (exit 0) when the block ends."""
    service = ServiceProcess(data_dir, open_file_limit=open_file_limit, **extra_env)
    await service.start()
    try:
        yield service
    finally:
        assert await service.stop() == 0
