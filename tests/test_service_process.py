"""The service as its own process: the embedded database, restarts, shutdown, commands, settings."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from storage.database import connect
from storage.embedded import DataDirLock, answers_ping, free_loopback_port
from tests.api_client import ApiClient
from tests.service_process import ROOT, ServiceProcess, run_command, running_service, service_env
from tests.waiting import until

pytestmark = pytest.mark.slow


def descendants_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


@pytest.mark.asyncio
async def test_data_survives_a_restart_on_the_embedded_database(tmp_path: Path) -> None:
    service = ServiceProcess(tmp_path / "data")
    await service.start()
    client = service.client()
    user = await client.sign_up("alice")
    assert (await client.post(f"/users/{user['id']}/save-settings", {"theme": "dark"})).status == 200
    assert await service.stop() == 0
    assert "embedded SecantusDB" in service.output()
    assert "imported the demo catalog" in service.output()

    again = ServiceProcess(tmp_path / "data")
    await again.start()
    try:
        reply = await again.client().login("alice")
        assert reply.status == 200 and reply.body["user"]["settings"]["theme"] == "dark"
        assert "demo catalog" not in again.output()
        # The session issued before the restart still works.
        client.base_url = again.base_url
        assert (await client.get("/auth/me")).status == 200
        # The demo catalog is there: series 1 can be put on the reading list.
        status = {"visibility": "public", "progressType": "chapters", "progress": 1, "status": "started",
                  "priority": "mid", "client": 1}
        assert (await client.post("/user/reading-status/add/1", status)).status == 200
    finally:
        assert await again.stop() == 0


async def requests_in_flight(client: ApiClient, at_least: int) -> bool:
    """Whether the service is answering `at_least` requests, the scrape that asks included."""
    text = (await client.request("GET", "/metrics")).raw.decode()
    return any(line.startswith("tsundoku_requests_in_flight ") and float(line.split()[1]) >= at_least
               for line in text.splitlines())


@pytest.mark.asyncio
async def test_sigterm_lets_an_inflight_request_finish_then_exits_0(tmp_path: Path) -> None:
    # Production argon2 costs make a registration take ~100 ms: long enough to be in flight.
    service = ServiceProcess(tmp_path / "data")
    await service.start()
    client = service.client()
    requests = [asyncio.create_task(client.register(f"user{i}")) for i in range(3)]
    # Registrations in flight besides the scrape itself (a condition, not a guess at their time).
    await until(lambda: requests_in_flight(client, at_least=2), 10, "registrations in flight")
    service.signal(signal.SIGTERM)
    replies = await asyncio.gather(*requests, return_exceptions=True)
    assert await service.wait() == 0
    completed = [r for r in replies if not isinstance(r, BaseException)]
    assert completed and all(r.status == 201 for r in completed), replies
    assert "stopped" in service.output()
    assert not (tmp_path / "data" / "embedded.json").exists()


@pytest.mark.asyncio
async def test_sigint_also_stops_cleanly(tmp_path: Path) -> None:
    service = ServiceProcess(tmp_path / "data")
    await service.start()
    service.signal(signal.SIGINT)
    assert await service.wait() == 0


@pytest.mark.asyncio
async def test_set_role_reaches_the_running_services_database(tmp_path: Path) -> None:
    async with running_service(tmp_path / "data") as service:
        client = service.client()
        await client.sign_up("alice")
        result = await asyncio.to_thread(run_command, ["set-role", "alice", "admin"], service.env)
        assert result.returncode == 0, result.stderr
        assert "alice now has the role admin" in result.stdout
        me = (await client.get("/auth/me")).body["user"]
        assert me["roles"] == ["admin"] and me["permissions"] == ["rate-series", "edit-users"]
        missing = await asyncio.to_thread(run_command, ["set-role", "nobody", "admin"], service.env)
        assert missing.returncode == 1 and "no user named 'nobody'" in missing.stderr


@pytest.mark.asyncio
async def test_reset_password_sets_it_and_ends_every_session_and_personal_token(tmp_path: Path) -> None:
    async with running_service(tmp_path / "data") as service:
        alice, elsewhere = service.client(), service.client()
        await alice.sign_up("alice")
        access_token = (await elsewhere.login("alice")).body["accessToken"]
        token = (await alice.post("/auth/tokens", {"name": "Mihon", "scopes": ["read"], "expires_in_days": 30})).body["token"]
        # Both work before the reset (a personal token reads the user's data, not /auth/me).
        for credential, path in ((token, "/user/reading-history"), (access_token, "/auth/me")):
            reply = await service.client().get(path, headers={"Authorization": f"Bearer {credential}"})
            assert reply.status == 200, path
        reset = await asyncio.to_thread(run_command, ["reset-password", "alice"], service.env,
                                        input="a brand new secret\n")
        assert reset.returncode == 0, reset.stderr
        assert "alice has a new password; 2 sessions and 1 personal tokens ended" in reset.stdout
        assert "a brand new secret" not in reset.stdout + reset.stderr
        assert (await alice.get("/auth/me")).status == 401
        assert (await elsewhere.get("/auth/me")).status == 401
        with_token = service.client()
        assert (await with_token.get("/user/reading-history", headers={"Authorization": f"Bearer {token}"})).status == 401
        assert (await with_token.get("/auth/me", headers={"Authorization": f"Bearer {access_token}"})).status == 401
        assert (await with_token.login("alice")).status == 401  # the old password
        assert (await with_token.login("alice", "a brand new secret")).status == 200
        short = await asyncio.to_thread(run_command, ["reset-password", "alice"], service.env, input="short\n")
        assert short.returncode == 2 and "nothing changed" in short.stderr
        assert (await service.client().login("alice", "a brand new secret")).status == 200
        missing = await asyncio.to_thread(run_command, ["reset-password", "nobody"], service.env, input="whatever12\n")
        assert missing.returncode == 1 and "no user named 'nobody'" in missing.stderr


@pytest.mark.asyncio
async def test_unlock_clears_a_login_lockout_from_every_address(tmp_path: Path) -> None:
    async with running_service(tmp_path / "data", LOGIN_FAILURES_PER_15_MIN="2") as service:
        client = service.client()
        await client.register("alice")
        for _ in range(2):
            assert (await client.login("alice", "wrong password")).status == 401
        assert (await client.login("alice")).status == 429  # locked out, with the right password too
        result = await asyncio.to_thread(run_command, ["unlock", "ALICE"], service.env)
        assert result.returncode == 0, result.stderr
        assert "login failures from 1 addresses cleared" in result.stdout
        assert (await client.login("alice")).status == 200
        missing = await asyncio.to_thread(run_command, ["unlock", "nobody"], service.env)
        assert missing.returncode == 1 and "no user named 'nobody'" in missing.stderr


@pytest.mark.asyncio
async def test_set_role_works_while_the_service_is_stopped(tmp_path: Path) -> None:
    service = ServiceProcess(tmp_path / "data")
    await service.start()
    await service.client().register("alice")
    assert await service.stop() == 0
    result = await asyncio.to_thread(run_command, ["set-role", "alice", "banned"], service.env)
    assert result.returncode == 0, result.stderr
    again = ServiceProcess(tmp_path / "data")
    await again.start()
    try:
        reply = await again.client().login("alice")
        assert reply.body["user"]["roles"] == ["banned"] and reply.body["user"]["permissions"] == []
    finally:
        await again.stop()


@pytest.mark.asyncio
async def test_a_second_service_on_one_data_dir_says_which_process_holds_it(tmp_path: Path) -> None:
    async with running_service(tmp_path / "data") as first:
        assert first.process is not None
        result = run_command([], service_env(tmp_path / "data", PORT=str(free_loopback_port())), timeout=60)
        assert result.returncode == 1
        assert f"another Tsundoku service (PID {first.process.pid}) is using DATA_DIR" in result.stderr
        assert "one DATA_DIR serves one instance" in result.stderr
        assert (await first.client().get("/health")).status == 200  # the first one is untouched


def test_an_address_it_cannot_listen_on_stops_the_start_before_the_database(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_command([], service_env(tmp_path, PORT=str(port)), timeout=30)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert not (tmp_path / "db").exists()  # no database was started, nothing imported


def test_an_unexpected_failure_is_logged_once_at_error_level_with_its_traceback(tmp_path: Path) -> None:
    # A command that fails on what nothing anticipated (here a sweep that raises at once, before
    # any database is opened): the operator gets the cause and where it came from, exit code 1.
    raising = ("import sys, server\n"
               "async def sweep(settings):\n"
               "    raise RuntimeError('the unexpected')\n"
               "server.sweep = sweep\n"
               "sys.exit(server.main(['sweep']))\n")
    result = subprocess.run([sys.executable, "-c", raising], cwd=ROOT, env=service_env(tmp_path, LOG_LEVEL="warning"),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert result.stderr.count("ERROR tsundoku: fatal: sweep stopped on RuntimeError: the unexpected") == 1, \
        result.stderr
    assert result.stderr.count("Traceback (most recent call last)") == 1, result.stderr
    assert 'File "<string>", line 3, in sweep' in result.stderr  # where it was raised


def test_set_role_refuses_an_unknown_role(tmp_path: Path) -> None:
    result = run_command(["set-role", "alice", "emperor"], service_env(tmp_path))
    assert result.returncode == 2
    assert "unknown role 'emperor'" in result.stderr


@pytest.mark.parametrize(
    "variable, value",
    # Through the real command, one of each kind (every variable is refused in test_settings.py);
    # the last four are the ones that once failed late, after the database had started.
    [("PORT", "70000"), ("COOKIE_SECURE", "maybe"), ("LOG_LEVEL", "loud"),
     ("HOST", "999.1.1.1"), ("MONGODB_URI", "http://example.com"), ("MONGODB_DB", "a/b"), ("DATA_DIR", "/proc/nope")],
)
def test_a_bad_setting_stops_the_start_with_one_line_and_exit_2(tmp_path: Path, variable: str, value: str) -> None:
    result = run_command([], service_env(tmp_path, **{variable: value}), timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0], result.stderr
    assert not (tmp_path / "db").exists()


def test_samesite_none_with_a_cookie_that_is_never_secure_stops_the_start_with_exit_2(tmp_path: Path) -> None:
    result = run_command([], service_env(tmp_path, COOKIE_SECURE="false", COOKIE_SAMESITE="none"), timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: COOKIE_SAMESITE is invalid; it accepts lax or strict while COOKIE_SECURE is false "
        "(none needs COOKIE_SECURE true or auto)"], result.stderr
    assert not (tmp_path / "db").exists()


def test_every_bad_setting_is_named_on_its_own_line_at_once(tmp_path: Path) -> None:
    result = run_command([], service_env(tmp_path, PORT="0", LOG_LEVEL="loud", COOKIE_SECURE="false",
                                         COOKIE_SAMESITE="none"), timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert [line.split(" ", 2)[1] for line in lines] == ["PORT", "LOG_LEVEL", "COOKIE_SAMESITE"], result.stderr
    assert all(line.startswith("error: ") and " is invalid; it accepts " in line for line in lines)


def test_an_unreachable_mongodb_stops_the_start_with_one_line_naming_the_reason(tmp_path: Path) -> None:
    uri = f"mongodb://tsundoku:secret@127.0.0.1:{free_loopback_port()}/"  # nothing listens there
    result = run_command([], service_env(tmp_path, MONGODB_URI=uri), timeout=60)
    assert result.returncode == 1  # the server may come up: the unit starts the service again
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot reach MongoDB at mongodb://***@127.0.0.1:") and "Connect call failed" in last
    assert "Topology" not in result.stderr and "Traceback" not in result.stderr and "secret" not in result.stderr


def test_a_mongodb_refusing_the_password_stops_the_start_with_exit_2(tmp_path: Path, mongo_uri: str) -> None:
    wrong = re.sub(r"//([^:]*):[^@]*@", r"//\1:not-the-password@", mongo_uri)
    assert wrong != mongo_uri
    result = run_command([], service_env(tmp_path, MONGODB_URI=wrong), timeout=60)
    assert result.returncode == 2  # a setting that would only fail again: the unit does not restart it
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: MongoDB at mongodb://***@127.0.0.1:") and "refused its user or password" in last
    assert "Traceback" not in result.stderr and "not-the-password" not in result.stderr


@pytest.mark.asyncio
async def test_with_mongodb_uri_set_it_starts_no_database(tmp_path: Path, mongo_uri: str) -> None:
    async with running_service(tmp_path / "data", MONGODB_URI=mongo_uri, MONGODB_DB="external_test") as service:
        assert (await service.client().register("alice")).status == 201
        assert not (tmp_path / "data" / "db").exists()
        client = connect(mongo_uri)
        try:
            assert await client.external_test.series.count_documents({}) == 0  # no demo catalog
        finally:
            await client.drop_database("external_test")
            await client.close()
        assert "MongoDB at mongodb://***@127.0.0.1" in service.output()
        password = mongo_uri.split(":")[2].split("@")[0]
        assert password not in service.output()


@pytest.mark.asyncio
async def test_a_standalone_mongodb_is_refused_at_start_with_exit_2(tmp_path: Path) -> None:
    # Transactions and retryable writes need a replica set; SecantusDB can present itself as standalone.
    port = free_loopback_port()
    standalone = subprocess.Popen([str(Path(sys.executable).parent / "secantusd-py"), "--host", "127.0.0.1",
                                   "--port", str(port), "--storage-path", str(tmp_path / "standalone"),
                                   "--standalone", "--log-level", "ERROR"])
    try:
        for _ in range(100):
            if await asyncio.to_thread(answers_ping, port):
                break
            await asyncio.sleep(0.1)
        uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
        result = await asyncio.to_thread(run_command, [], service_env(tmp_path / "data", MONGODB_URI=uri), 60)
        assert result.returncode == 2
        assert "needs a replica set" in result.stderr
    finally:
        standalone.terminate()
        standalone.wait()



@pytest.mark.parametrize("holder, args", [("the operator command 'backup'", []),  # a service started meanwhile
                                          ("a Tsundoku service", ["sweep"])])  # a command during its start
def test_whoever_holds_the_embedded_database_is_named_before_a_second_one_starts(
    tmp_path: Path, holder: str, args: list[str]
) -> None:
    # Held in this process as an operator command (or a starting service) holds it while its
    # SecantusDB runs; a second SecantusDB on those files would only say "exit code 1 at start".
    data_dir = tmp_path / "data"
    lock = DataDirLock(data_dir)
    lock.acquire(holder)
    try:
        result = run_command(args, service_env(data_dir, PORT=str(free_loopback_port())), timeout=30)
    finally:
        lock.release()
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{holder} (PID {os.getpid()}) is using DATA_DIR {data_dir}" in lines[0]
    assert not (data_dir / "db").exists() and not (data_dir / "secantusd.log").exists()  # nothing was started


def test_a_command_refused_in_an_existing_empty_data_dir_leaves_it_empty(tmp_path: Path) -> None:
    # Found by a newcomer: the lock file was made before the check.
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    refused = run_command(["unlock", "alice"], service_env(data_dir))
    assert refused.returncode == 1 and "holds no database" in refused.stderr
    assert list(data_dir.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="giving the directory to another user needs root")
@pytest.mark.asyncio
async def test_a_command_refuses_a_data_dir_of_another_user_and_writes_nothing_there(tmp_path: Path) -> None:
    # Found by a newcomer: set-role run as root on the stopped systemd deployment left root's
    # journal files in the database, and the service, run as its own user, no longer started.
    data_dir = tmp_path / "data"
    service = ServiceProcess(data_dir)
    await service.start()
    await service.client().register("alice")
    assert await service.stop() == 0
    nobody = 65534
    for path in [data_dir, *data_dir.rglob("*")]:
        os.chown(path, nobody, nobody, follow_symlinks=False)
    before = sorted((str(p), p.stat().st_mtime_ns) for p in data_dir.rglob("*"))
    for args in (["set-role", "alice", "admin"], ["compact"], []):  # a command, compact, the service
        refused = run_command(args, service_env(data_dir), timeout=30)
        assert refused.returncode == 1, refused.stderr
        assert f"{data_dir} belongs to " in refused.stderr and "runuser -u " in refused.stderr, refused.stderr
    assert sorted((str(p), p.stat().st_mtime_ns) for p in data_dir.rglob("*")) == before
    assert {p.stat().st_uid for p in data_dir.rglob("*")} == {nobody}


@pytest.mark.parametrize("args", [["set-role", "alice", "admin"], ["verify-age", "alice"], ["sweep"],
                                  ["recount-ratings"], ["recount-collection-stats", "--check"], ["backup", "dump"],
                                  ["reset-password", "alice"], ["unlock", "alice"], ["compact"]])
def test_an_operator_command_refuses_a_data_dir_that_holds_no_database(tmp_path: Path, args: list[str]) -> None:
    # Run without the service's settings, it would answer about a new, empty database ("no user
    # named alice") and leave that database behind.
    data_dir = tmp_path / "data"
    refused = run_command([a if a != "dump" else str(tmp_path / "dump") for a in args], service_env(data_dir))
    assert refused.returncode == 1, refused.stderr
    assert f"DATA_DIR {data_dir} holds no database" in refused.stderr
    assert "the service's settings" in refused.stderr
    assert not data_dir.exists() and not (tmp_path / "dump").exists()
