"""A TypeScript client made from the served /openapi.json the usual way: openapi-typescript writes
the types, openapi-fetch sends the requests, and clients/typescript/tour.ts makes a reader's whole
tour with them (no request written by hand), compiled by `tsc` and run by Node against the service.
The generator must print no warning, `tsc` must find no error, and every step must get what the
document promised. The npm packages are clients/typescript's (`make test` installs them with
`npm ci`); where Node or they are missing, the test is skipped with its reason."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.catalog_data import series, volume
from tests.conftest import RunningApp
from tests.images import b64, image_bytes
from tests.service_process import ROOT

pytestmark = pytest.mark.asyncio

CATALOG = [series(1, "Yotsuba to!", volumes=[volume(11, 1)]), series(2, "Berserk")]
PACKAGES = ROOT / "clients" / "typescript"
TOOLS = PACKAGES / "node_modules" / ".bin"
# The tour, compiled to JavaScript modules that Node runs as they are.
COMPILER_SETTINGS = {"compilerOptions": {"strict": True, "target": "ES2022", "module": "ES2022",
                                         "moduleResolution": "bundler", "skipLibCheck": True, "outDir": "built"},
                     "files": ["tour.ts"]}


async def run(*command: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(*command, cwd=cwd, env={**os.environ, **(env or {})},
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=180)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_a_typescript_client_makes_the_whole_tour_with_no_hand_written_request(
    running: RunningApp, catalog: None, tmp_path: Path
) -> None:
    if shutil.which("node") is None or not (TOOLS / "openapi-typescript").exists():
        pytest.skip("Node.js or clients/typescript's packages are missing (make test installs them with npm ci)")
    document = await running.client().get("/openapi.json")
    assert document.status == 200
    (tmp_path / "openapi.json").write_bytes(document.raw)
    (tmp_path / "node_modules").symlink_to(PACKAGES / "node_modules")
    shutil.copy(PACKAGES / "tour.ts", tmp_path / "tour.ts")
    (tmp_path / "tsconfig.json").write_text(json.dumps(COMPILER_SETTINGS))
    (tmp_path / "package.json").write_text(json.dumps({"type": "module"}))

    status, output = await run(str(TOOLS / "openapi-typescript"), "openapi.json", "--default-non-nullable", "false",
                               "-o", "tsundoku-api.d.ts", cwd=tmp_path)
    assert status == 0, output
    # Any warning is a part of the document the generator could not type as written.
    assert "warn" not in output.lower() and "⚠" not in output, output

    status, output = await run(str(TOOLS / "tsc"), "-p", ".", cwd=tmp_path)
    assert status == 0, output

    avatar = b64(image_bytes("PNG", (64, 64)))
    status, output = await run("node", "built/tour.js", cwd=tmp_path,
                               env={"TSUNDOKU_URL": running.base_url, "TSUNDOKU_AVATAR": avatar})
    assert status == 0, output
    assert output.strip().endswith("tour complete"), output
