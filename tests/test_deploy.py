"""deploy/: the nginx configuration is checked by `nginx -t` and used: requests go through it (TLS,
the forwarded address, uploads to the file-service upstream, large bodies reaching the service's
own 413); the systemd unit is checked by `systemd-analyze verify`. Skipped where the machine has
no nginx or systemd-analyze (`make test` installs nginx from Debian where it can)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from storage.embedded import free_loopback_port
from tests.api_client import ApiClient
from tests.conftest import StartApp
from tests.mal_files import mal_file, manga

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def site_for_test(api_port: int, https_port: int, http_port: int, certificate: Path, key: Path) -> str:
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    return (site.replace("127.0.0.1:4545", f"127.0.0.1:{api_port}").replace("127.0.0.1:4546", f"127.0.0.1:{api_port}")
            .replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
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


@pytest.mark.skipif(NGINX is None or shutil.which("openssl") is None, reason="nginx or openssl is not installed")
@pytest.mark.asyncio
async def test_the_nginx_configuration_is_valid_and_serves_the_api(tmp_path: Path, start_app: StartApp) -> None:
    running = await start_app(trust_proxy=True, cookie_secure=True)
    key, certificate = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(key), "-out", str(certificate)], check=True, capture_output=True)
    https_port, http_port = free_loopback_port(), free_loopback_port()
    site = tmp_path / "site.conf"
    site.write_text(site_for_test(running.port, https_port, http_port, certificate, key))
    main = tmp_path / "nginx.conf"
    main.write_text(nginx_main(tmp_path, site))
    assert NGINX is not None
    checked = subprocess.run([NGINX, "-t", "-c", str(main), "-p", str(tmp_path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen([NGINX, "-c", str(main), "-p", str(tmp_path), "-g", "daemon off;"],
                               stderr=subprocess.PIPE)
    try:
        await asyncio.sleep(0.5)
        base = f"https://localhost:{https_port}"
        api = ApiClient(base)
        api._http.defaults["validate_cert"] = False  # type: ignore[attr-defined]
        health = await api.get("/health")
        assert health.status == 200 and health.body["status"] == "ok"
        assert (await api.register("alice")).status == 201
        login = await api.login("alice")
        assert login.status == 200 and "Secure" in login.headers["Set-Cookie"]
        # An avatar upload goes to the file-service upstream (here the same instance).
        user_id = login.body["user"]["id"]
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
        plain = ApiClient(f"http://127.0.0.1:{http_port}")
        redirected = await plain.get("/health")
        assert redirected.status == 301 and redirected.headers["Location"].startswith("https://")
    finally:
        process.terminate()
        process.wait(timeout=10)
    log = (tmp_path / "access.log").read_text()
    assert "/auth/register" in log and "/user/update-image/" in log


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
