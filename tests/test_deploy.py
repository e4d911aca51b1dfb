"""deploy/: the nginx configuration is checked by `nginx -t` and used: requests go through it (TLS,
the client's address as nginx saw it whatever the client claims, uploads to the file-service
upstream, large bodies reaching the service's own 413); the systemd unit is checked by
`systemd-analyze verify`. Skipped where the machine has no nginx or systemd-analyze (`make test`
installs nginx from Debian where it can)."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient

from storage.embedded import free_loopback_port
from tests.api_client import ApiClient
from tests.conftest import StartApp
from tests.images import b64, image_bytes
from tests.mal_files import mal_file, manga

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def site_for_test(api_port: int, https_port: int, http_port: int, certificate: Path, key: Path,
                  address: str = "127.0.0.1") -> str:
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    # Only the unit's address is rewritten: an upstream elsewhere (a second instance the unit does
    # not run) stays as shipped, and a request sent there fails the test with nginx's 502.
    return (site.replace("127.0.0.1:4545", f"127.0.0.1:{api_port}")
            .replace("listen 443 ssl http2;", f"listen {address}:{https_port} ssl http2;")
            .replace("listen [::]:443 ssl http2;", "")
            .replace("listen 80;", f"listen 127.0.0.1:{http_port};").replace("listen [::]:80;", "")
            .replace("/etc/ssl/certs/tsundoku.pem", str(certificate))
            .replace("/etc/ssl/private/tsundoku.key", str(key)))


def nginx_main(prefix: Path, site: Path) -> str:
    # Started as root (as here), nginx's workers would run as nobody, who cannot enter pytest's
    # private temporary directories: they stay root for the test.
    workers = "user root root;\n" if os.geteuid() == 0 else ""
    return (f"{workers}pid {prefix}/nginx.pid;\nerror_log {prefix}/error.log;\nevents {{}}\n"
            f"http {{\n access_log {prefix}/access.log;\n client_body_temp_path {prefix}/body;\n"
            f" proxy_temp_path {prefix}/proxy;\n include {site};\n}}\n")


def free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def non_loopback_address() -> str | None:
    """An IPv4 address of this machine that is not loopback (the one its default route leaves
    from), or None: connecting a UDP socket sends nothing."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("192.0.2.1", 9))
            address = str(sock.getsockname()[0])
    except OSError:
        return None
    return None if ipaddress.ip_address(address).is_loopback else address


@dataclass
class Nginx:
    base_url: str  # the HTTPS server
    http_port: int  # the redirect to HTTPS
    clients: list[AsyncHTTPClient] = field(default_factory=list)

    def client(self, source_address: str | None = None) -> ApiClient:
        """A client of the HTTPS server (its certificate is self-signed), connecting from
        `source_address` when given."""
        api = ApiClient(self.base_url)
        defaults: dict[str, Any] = {"validate_cert": False}
        if source_address is not None:
            defaults["network_interface"] = source_address
        api._http = AsyncHTTPClient(force_instance=True, defaults=defaults)  # type: ignore[attr-defined]
        self.clients.append(api._http)  # type: ignore[attr-defined]
        return api


@asynccontextmanager
async def nginx_in_front(tmp_path: Path, api_port: int, address: str = "127.0.0.1") -> AsyncIterator[Nginx]:
    """deploy/nginx.conf, checked by `nginx -t` and running, in front of the service on `api_port`;
    its HTTPS server listens on `address`."""
    key, certificate = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(key), "-out", str(certificate)], check=True, capture_output=True)
    https_port, http_port = free_port(address), free_loopback_port()
    site = tmp_path / "site.conf"
    site.write_text(site_for_test(api_port, https_port, http_port, certificate, key, address))
    main = tmp_path / "nginx.conf"
    main.write_text(nginx_main(tmp_path, site))
    assert NGINX is not None
    checked = subprocess.run([NGINX, "-t", "-c", str(main), "-p", str(tmp_path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen([NGINX, "-c", str(main), "-p", str(tmp_path), "-g", "daemon off;"],
                               stderr=subprocess.PIPE)
    try:
        for _ in range(500):  # until it listens
            try:
                _, writer = await asyncio.open_connection(address, https_port)
            except OSError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                await asyncio.sleep(0.01)
                continue
            writer.close()
            break
        nginx = Nginx(f"https://{address}:{https_port}", http_port)
        try:
            yield nginx
        finally:
            for client in nginx.clients:
                client.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


needs_nginx = pytest.mark.skipif(NGINX is None or shutil.which("openssl") is None,
                                 reason="nginx or openssl is not installed")


@needs_nginx
@pytest.mark.asyncio
async def test_the_nginx_configuration_is_valid_and_serves_the_api(tmp_path: Path, start_app: StartApp) -> None:
    running = await start_app(trust_proxy=True, cookie_secure=True)
    async with nginx_in_front(tmp_path, running.port) as nginx:
        api = nginx.client()
        health = await api.get("/health")
        assert health.status == 200 and health.body["status"] == "ok"
        assert (await api.register("alice")).status == 201
        login = await api.login("alice")
        assert login.status == 200 and "Secure" in login.headers["Set-Cookie"]
        # An avatar upload goes to the file-service upstream, which as shipped is the unit's one
        # instance; larger than a JSON body, so the upload location's own limit is the one applied.
        user_id = login.body["user"]["id"]
        image = image_bytes("PNG", (16, 16)) + os.urandom(400 * 1024)  # a PNG with trailing data
        uploaded = await api.post(f"/user/update-image/{user_id}", {"image": b64(image)})
        assert (uploaded.status, uploaded.body) == (200, {"data": "Profile image updated successfully", "code": 200})
        avatar = await api.get(f"/user/avatar/{user_id}/scaled", send_cookies=False)
        assert avatar.status == 200 and avatar.headers["Content-Type"] == "image/webp"
        assert (await api.post(f"/user/update-image/{user_id}", {"image": "not an image"})).status == 400
        # A body past the route's limit is refused by nginx, in the service's JSON shape.
        too_big = await api.request("POST", "/auth/register", body=b"x" * (2 * 1024 * 1024),
                                    headers={"Content-Type": "application/json"})
        assert too_big.status == 413 and too_big.body == {"data": "Request body too large", "code": 413}
        # An import larger than a JSON body passes to the service.
        # (Many entries: one element's text may not pass 64 Ki characters.)
        large = mal_file([manga(manga_title="Nothing", my_comments="x" * 5_000)] * 60)
        assert len(large) > 256 * 1024
        imported = await api.request("POST", "/user/import/mal", body=large, headers={"Content-Type": "text/xml"})
        assert imported.status == 200 and imported.body["counts"]["entries"] == 60
        plain = ApiClient(f"http://127.0.0.1:{nginx.http_port}")
        redirected = await plain.get("/health")
        assert redirected.status == 301 and redirected.headers["Location"].startswith("https://")
    log = (tmp_path / "access.log").read_text()
    assert "/auth/register" in log and "/user/update-image/" in log


# What a client sends to pass for another address: Tornado prefers X-Real-IP, then the last
# address of X-Forwarded-For.
FORGED = {"X-Real-IP": "203.0.113.9", "X-Forwarded-For": "198.51.100.4, 203.0.113.9"}


@needs_nginx
@pytest.mark.asyncio
async def test_behind_nginx_the_address_is_the_one_nginx_saw_whatever_the_client_claims(
    tmp_path: Path, start_app: StartApp
) -> None:
    running = await start_app(trust_proxy=True, cookie_secure=True)
    async with nginx_in_front(tmp_path, running.port) as nginx:
        # nginx itself reaches the service from 127.0.0.1: 127.0.0.7 can only come from nginx's
        # headers, and only nginx's, since the client claims another address in both.
        api = nginx.client(source_address="127.0.0.7")
        assert (await api.request("POST", "/auth/register", json_body={"username": "alice",
                                  "password": "correct horse"}, headers=FORGED)).status == 201
        assert (await api.request("POST", "/auth/login", json_body={"username": "alice",
                                  "password": "correct horse"}, headers=FORGED)).status == 200
        sessions = await api.get("/auth/sessions", headers=FORGED)
        assert sessions.status == 200
        assert [session["address"] for session in sessions.body["sessions"]] == ["127.0.0.7"]


@needs_nginx
@pytest.mark.asyncio
async def test_behind_nginx_auto_makes_the_cookie_secure_whatever_scheme_the_client_claims(
    tmp_path: Path, start_app: StartApp
) -> None:
    # Tornado believes X-Scheme before X-Forwarded-Proto: nginx must set both, or a client's own
    # `X-Scheme: http` would reach the service and its cookie would lose Secure.
    running = await start_app(trust_proxy=True, cookie_secure="auto", cookie_samesite="none")
    async with nginx_in_front(tmp_path, running.port) as nginx:
        api = nginx.client()
        assert (await api.register("alice")).status == 201
        for claimed in ({}, {"X-Forwarded-Proto": "http"}, {"X-Scheme": "http"}):
            login = await api.request("POST", "/auth/login", json_body={"username": "alice",
                                      "password": "correct horse"}, headers=claimed)
            assert login.status == 200
            cookie = login.headers["Set-Cookie"]
            assert "; Secure" in cookie and "SameSite=None" in cookie, (claimed, cookie)


@needs_nginx
@pytest.mark.skipif(non_loopback_address() is None, reason="this machine has no address but loopback")
@pytest.mark.asyncio
async def test_a_client_claiming_a_loopback_address_through_nginx_cannot_read_the_metrics(
    tmp_path: Path, start_app: StartApp
) -> None:
    # The probe's attack: `X-Real-IP: 127.0.0.1` through nginx, which did not set that header.
    address = non_loopback_address()
    assert address is not None
    running = await start_app(trust_proxy=True, cookie_secure=True)
    async with nginx_in_front(tmp_path, running.port, address) as nginx:
        api = nginx.client()
        for claimed in ({"X-Real-IP": "127.0.0.1"}, {"X-Forwarded-For": "127.0.0.1"},
                        {"X-Real-IP": "::1", "X-Forwarded-For": "127.0.0.1"}):
            assert (await api.get("/metrics", headers=claimed)).status == 403, claimed
    assert (await running.client().get("/metrics")).status == 200  # from loopback, without nginx


def test_every_upstream_is_the_instance_the_unit_runs() -> None:
    # Found by a newcomer: uploads went to a second instance that the unit never starts (502).
    unit = (ROOT / "deploy" / "tsundoku.service").read_text()
    host = unit.split("Environment=HOST=", 1)[1].split()[0]
    port = unit.split("Environment=PORT=", 1)[1].split()[0]
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    servers = [line.split("#", 1)[0].split() for line in site.splitlines()]
    upstreams = [words[1].rstrip(";") for words in servers if len(words) == 2 and words[0] == "server" and words[1] != "{"]
    assert upstreams == [f"{host}:{port}", f"{host}:{port}"]


def test_every_proxied_location_sends_the_address_and_scheme_nginx_saw() -> None:
    # proxy_set_header is inherited only by a block that has none of its own: one added to a
    # location would silently drop the address headers there.
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    lines = [line.split("#", 1)[0].strip() for line in site.splitlines()]
    blocks: list[list[str]] = []  # the directives of each block still open, outermost first
    proxied: list[tuple[list[str], list[str]]] = []  # (a proxying block, the blocks around it)
    for line in lines:
        if line.endswith("{"):
            blocks.append([line])
        elif line == "}":
            block = blocks.pop()
            if any(directive.startswith("proxy_pass ") for directive in block):
                proxied.append((block, [list(b) for b in blocks]))
        elif line and blocks:
            blocks[-1].append(line)
    assert len(proxied) == 4
    for block, around in proxied:
        setting = next(b for b in [block, *reversed(around)] if any(d.startswith("proxy_set_header ") for d in b))
        assert "proxy_set_header X-Real-IP $remote_addr;" in setting, block[0]
        assert "proxy_set_header X-Forwarded-For $remote_addr;" in setting, block[0]
        assert "proxy_set_header X-Scheme $scheme;" in setting, block[0]
        assert "proxy_set_header X-Forwarded-Proto $scheme;" in setting, block[0]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_systemd_unit_is_valid(tmp_path: Path) -> None:
    unit = (ROOT / "deploy" / "tsundoku.service").read_text()
    # Here, the unit runs this checkout's interpreter (the installed path exists only on a server).
    unit = unit.replace("/opt/tsundoku/.venv/bin/python", sys.executable).replace("/opt/tsundoku", str(ROOT))
    path = tmp_path / "tsundoku.service"
    path.write_text(unit)
    result = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True)
    problems = [line for line in result.stderr.splitlines() if "tsundoku.service" in line]
    assert problems == [], result.stderr
