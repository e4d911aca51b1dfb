"""schemathesis against the service as its own process, from its own /openapi.json.

The session cookie goes through the document's security scheme (tests/fuzzing/schemathesis.toml),
so the cases generated without it really go without it, and must answer 401. The fuzzing user is
an administrator with an avatar, so that admin routes and the image answers are reached too. What
must hold for every generated request: no 5xx, every status documented, every answer of the
documented content type and schema (errors included: `{data, code, errors?}`), required headers,
authentication and unsupported methods honoured. Whether each request schema is exactly as strict
as the service (schemathesis' positive and negative data checks) is the OpenAPI issue's to prove.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.images import b64, image_bytes
from tests.service_process import ROOT, run_command, running_service

pytestmark = pytest.mark.asyncio

CONFIG = ROOT / "tests" / "fuzzing" / "schemathesis.toml"
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
          "response_headers_conformance,ignored_auth,unsupported_method,missing_required_header")
# Per operation and phase: about 40 s for the whole document here; raise it for a deeper run
# (FUZZ_EXAMPLES=500 make test).
EXAMPLES = os.environ.get("FUZZ_EXAMPLES", "20")  # per operation; FUZZ_EXAMPLES=100 for a deeper run


def schemathesis(scratch: Path, base_url: str, token: str, user_id: str,
                 *selection: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TSUNDOKU_TOKEN": token, "TSUNDOKU_USER_ID": user_id, "NO_COLOR": "1"}
    command = [str(Path(sys.executable).parent / "st"), "--config-file", str(CONFIG), "run",
               f"{base_url}/openapi.json", "--checks", CHECKS, "--max-examples", EXAMPLES,
               "--request-timeout", "15", "--no-color", *selection]
    if "FUZZ_SEED" in os.environ:
        command += ["--seed", os.environ["FUZZ_SEED"]]
    # Run from a scratch directory: schemathesis keeps a cache in its working directory.
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, cwd=scratch)


def failures(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n{result.stdout[-30000:]}\n{result.stderr[-5000:]}"


async def test_schemathesis_finds_no_5xx_and_every_answer_matches_the_document(tmp_path: Path) -> None:
    async with running_service(tmp_path / "data") as service:
        api = service.client()
        user = await api.sign_up("fuzzer")
        granted = run_command(["set-role", "fuzzer", "admin"], service.env)
        assert granted.returncode == 0, granted.stderr
        reply = await api.post(f"/user/update-image/{user['id']}", {"image": b64(image_bytes("PNG", (64, 64)))})
        assert reply.status == 200
        token = api.cookies["refreshToken"]

        everything_but_logout = await asyncio.to_thread(
            schemathesis, tmp_path, service.base_url, token, user["id"], "--exclude-path", "/auth/logout")
        assert everything_but_logout.returncode == 0, failures(everything_but_logout)
        assert "passed" in everything_but_logout.stdout and " 0 passed" not in everything_but_logout.stdout
        # Last, since it ends the session the first run needed.
        logout = await asyncio.to_thread(schemathesis, tmp_path, service.base_url, token, user["id"],
                                         "--include-path", "/auth/logout")
        assert logout.returncode == 0, failures(logout)
    assert "Traceback" not in service.output()
