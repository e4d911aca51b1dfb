"""Avatar processing (time and peak memory for a 6000x4000 JPEG) and serving throughput."""

from __future__ import annotations

import asyncio
import io
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

from bench.harness import bench_service, machine, summary, timed
from tests.api_client import ApiClient
from tests.images import b64

ROOT = Path(__file__).resolve().parent.parent

# Measured in a fresh process so that nothing else has touched its memory: peak RSS after the
# bytes are in memory versus after processing.
# VmHWM, not ru_maxrss: a child's ru_maxrss can start at its parent's high-water mark.
_PROCESS_ONCE = """
import re, sys, time
import imaging
imaging.guard_decoding(40_000_000)
def peak_kb():
    return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
data = open(sys.argv[1], "rb").read()
before = peak_kb()
started = time.perf_counter()
imaging.render_avatar(data, 40_000_000)
elapsed = time.perf_counter() - started
after = peak_kb()
print(elapsed * 1000, (after - before) / 1024, after / 1024)
"""


def photo(path: Path) -> int:
    """A 6000x4000 JPEG with photo-like detail (a gradient under noise), quality 85: about the
    size a 24-megapixel camera writes."""
    noise = Image.effect_noise((6000, 4000), 12).convert("L")
    gradient = Image.linear_gradient("L").resize((6000, 4000))
    image = Image.merge("RGB", (gradient, noise, Image.blend(gradient, noise, 0.5)))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    path.write_bytes(buffer.getvalue())
    return len(buffer.getvalue())


def processing(path: Path, runs: int = 5) -> dict:
    samples = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", _PROCESS_ONCE, str(path)], cwd=ROOT, capture_output=True,
                             text=True, check=True)
        samples.append([float(x) for x in out.stdout.split()])
    return {"ms_p50": round(statistics.median(s[0] for s in samples), 1),
            "peak_mb_added_max": round(max(s[1] for s in samples), 1),
            "peak_rss_mb_max": round(max(s[2] for s in samples), 1)}


def load(url: str, total: int, concurrency: int, *headers: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.load", url, str(total), str(concurrency), *headers],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


async def main() -> dict:
    results: dict = {"machine": machine()}
    path = Path("/tmp/tsundoku-bench-photo.jpg")
    size = photo(path)
    results["photo_bytes"] = size
    results["processing"] = processing(path)
    print(f"6000x4000 JPEG ({size / 1048576:.1f} MB): render {results['processing']}", flush=True)
    async with bench_service() as bench:
        client = ApiClient(bench.base_url)
        user = await client.sign_up("photographer")
        payload = b64(path.read_bytes())

        async def upload() -> None:
            reply = await client.post(f"/user/update-image/{user['id']}", {"image": payload})
            assert reply.status == 200, reply.body

        results["upload_http"] = summary(await timed(upload, 5, warmup=1))
        print(f"upload through HTTP: {results['upload_http']}", flush=True)
        url = f"{bench.base_url}/user/avatar/{user['id']}/scaled"
        etag = (await client.get(f"/user/avatar/{user['id']}/scaled")).headers["ETag"]
        results["serve_scaled"] = await asyncio.to_thread(load, url, 2000, 16)
        results["serve_scaled_304"] = await asyncio.to_thread(load, url, 2000, 16, f"If-None-Match={etag}")
        print(f"serving scaled: {results['serve_scaled']}; with If-None-Match: {results['serve_scaled_304']}",
              flush=True)

        # While a large upload is processed, other requests still get answers.
        async def health() -> None:
            assert (await client.get("/health")).status == 200

        during = asyncio.create_task(upload())
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        samples = await timed(health, 10, warmup=0)
        results["health_during_upload"] = summary(samples)
        await during
        print(f"GET /health while an upload is processed: {results['health_during_upload']} "
              f"(measured over {time.perf_counter() - started:.2f} s)", flush=True)
    return results


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main()), indent=1))
