"""schemathesis against the service as its own process, from its own /openapi.json.

The session cookie goes through the document's security scheme (tests/fuzzing/schemathesis.toml),
so the cases generated without it really go without it, and must answer 401. The fuzzing user is
an administrator with an avatar, so that admin routes and the image answers are reached too. What
must hold for every generated request: no 5xx, every status documented, every answer of the
documented content type and schema (errors included: `{data, code, errors?}`), required headers,
authentication and unsupported methods honoured; and every request schema exactly as strict as
the service: schema-valid data is not refused for its form (`positive_data_acceptance`), schema-
invalid data is refused (`negative_data_rejection`). What no schema can say is put in line in the
data generated as valid by tests/fuzzing/hooks.py (a real file and image, prices to the cent, dates
in order, no repeated entries; a fresh Idempotency-Key per request); the statuses each check
expects are in tests/fuzzing/schemathesis.toml.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.images import b64, image_bytes
from tests.service_process import ROOT, run_command, running_service

pytestmark = pytest.mark.asyncio

CONFIG = ROOT / "tests" / "fuzzing" / "schemathesis.toml"
HOOKS = ROOT / "tests" / "fuzzing" / "hooks.py"
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
          "response_headers_conformance,ignored_auth,unsupported_method,missing_required_header,"
          "positive_data_acceptance,negative_data_rejection")
# Per operation and phase. The five groups took 232 s one after another at 10 (2026-12-07), and
# 294 s of the suite's worker time at 20: the coverage phase, which this does not bound, is most
# of it. Raise it for a deeper run (FUZZ_EXAMPLES=500 make test).
EXAMPLES = os.environ.get("FUZZ_EXAMPLES", "10")  # per operation; FUZZ_EXAMPLES=100 for a deeper run


def schemathesis(scratch: Path, base_url: str, token: str, user_id: str,
                 *selection: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TSUNDOKU_TOKEN": token, "TSUNDOKU_USER_ID": user_id, "NO_COLOR": "1",
           "SCHEMATHESIS_HOOKS": str(HOOKS)}
    command = [str(Path(sys.executable).parent / "st"), "--config-file", str(CONFIG), "run",
               f"{base_url}/openapi.json", "--checks", CHECKS, "--max-examples", EXAMPLES,
               "--request-timeout", "15", "--no-color", *selection]
    if "FUZZ_SEED" in os.environ:
        command += ["--seed", os.environ["FUZZ_SEED"]]
    # Run from a scratch directory: schemathesis keeps a cache in its working directory.
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, cwd=scratch)


# Paths that end the fuzzing user's session: a logout, the end of a session by its id (the stateful
# phase takes the id from GET /auth/sessions), and an administrator's deletion of an account (the
# fuzzing user is one, and its id is in GET /user/me).
SESSION_ENDERS = ("/auth/logout", "/auth/sessions/{id}", "/admin-users/account/{id}")


def _exclude(paths: tuple[str, ...]) -> list[str]:
    return [argument for path in paths for argument in ("--exclude-path", path)]


def _include(paths: tuple[str, ...]) -> list[str]:
    return [argument for path in paths for argument in ("--include-path", path)]


# The operations whose every generated request has the wrong password (the fuzzing user's is secret).
PASSWORD_CHECKS = {"DELETE /user/account", "POST /auth/change-password", "POST /auth/login"}


def only_401(output: str) -> set[str]:
    """The operations schemathesis' warning lists as answering nothing but 401."""
    listed: set[str] = set()
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("401 Unauthorized ("):
            for item in lines[index + 1:]:
                if not item.startswith("  - "):
                    break
                listed.add(item[4:].strip())
    return listed


def failures(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n{result.stdout[-30000:]}\n{result.stderr[-5000:]}"


# The operations in five groups, each fuzzed by its own test (with its own service), so that the
# suite's two workers share the work and a test that must run alone never waits long for one.
# The last group is every operation the others leave; a group's OpenAPI links stay within it.
GROUPS = {
    "accounts": r"^/(auth/|user/account$|admin-users/)",
    "reading": r"^/user/(reading-|series-rating|changes)",
    "collection and catalog": r"^/(user/collection|volumes/|series)",
    "profiles and images": r"^/(users|user/(me$|avatar/|update-image/|delete-image/))",
}
EVERYTHING_ELSE = "|".join(GROUPS.values())


@pytest.mark.parametrize("group", [*GROUPS, "the rest"])
async def test_schemathesis_finds_no_5xx_and_every_answer_matches_the_document(tmp_path: Path, group: str) -> None:
    selection = (["--include-path-regex", GROUPS[group]] if group in GROUPS
                 else ["--exclude-path-regex", EVERYTHING_ELSE])
    async with running_service(tmp_path / "data") as service:
        api = service.client()
        # A password no example in the document holds: the recorded DELETE /user/account example
        # would otherwise delete the fuzzing user in the first phase, and every authenticated route
        # after it would answer only 401.
        user = await api.sign_up("fuzzer", secrets.token_urlsafe(16))
        granted = run_command(["set-role", "fuzzer", "admin"], service.env)
        assert granted.returncode == 0, granted.stderr
        reply = await api.post(f"/user/update-image/{user['id']}", {"image": b64(image_bytes("PNG", (64, 64)))})
        assert reply.status == 200
        token = api.cookies["refreshToken"]

        first = await asyncio.to_thread(
            schemathesis, tmp_path, service.base_url, token, user["id"], *selection, *_exclude(SESSION_ENDERS))
        assert first.returncode == 0, failures(first)
        assert "passed" in first.stdout and " 0 passed" not in first.stdout
        # The session held all along: every authenticated route was reached past its 401, so the
        # checks on what it takes and refuses were made there. The routes that check a password
        # answer 401 to every generated one, which is right.
        assert only_401(first.stdout) <= PASSWORD_CHECKS, failures(first)
        if group == "accounts":
            # Last, since they end the session the first run needed; no stateful phase, whose links
            # lead to the operations of the first run.
            enders = await asyncio.to_thread(schemathesis, tmp_path, service.base_url, token, user["id"],
                                             *_include(SESSION_ENDERS), "--phases", "examples,coverage,fuzzing")
            assert enders.returncode == 0, failures(enders)
    assert "Traceback" not in service.output()
