"""Decoding memory: an upload that decodes to more than the per-image bound is refused from its
header (counting what each decoder holds besides the image: WebP's copies, a disposed GIF frame,
a progressive JPEG's coefficients); what is accepted is decoded once at full size and reduced a
band at a time; at most two decode at once; large buffers go back to the OS afterwards."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from imaging import MAX_DECODED_BYTES, MAX_DECODES_AT_ONCE, ImageRejected, render_avatar
from settings import Settings
from tests.api_client import ApiClient
from tests.images import b64, flat_png, gif_disposed_of, image_bytes, opened, photo
from tests.service_process import ROOT, running_service
from tests.waiting import until

pytestmark = pytest.mark.asyncio

# 6324x6324 = 39.99 megapixels: under the pixel cap. A few KB to 300 KB of file each.
GRAY_BOMB = 6324
MAX_PIXELS = Settings.model_fields["max_image_pixels"].default


def status_mb(pid: int, field: str) -> float:
    return int(re.search(rf"{field}:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1)) / 1024


async def test_a_colour_png_that_would_decode_past_the_bound_is_refused_from_its_header(api: ApiClient) -> None:
    user = await api.sign_up("alice")
    bomb = flat_png(GRAY_BOMB, GRAY_BOMB, color_type=6, bit_depth=16)  # 160 MB of RGBA once decoded
    reply = await api.post(f"/user/update-image/{user['id']}", {"image": b64(bomb)})
    assert (reply.status, reply.body["data"]) == (
        400, "Image has too many pixels to decode (at most 16 megapixels for an image like this one)")


async def test_a_40_megapixel_grayscale_png_is_still_accepted(api: ApiClient) -> None:
    user = await api.sign_up("alice")
    reply = await api.post(f"/user/update-image/{user['id']}",
                           {"image": b64(flat_png(GRAY_BOMB, GRAY_BOMB, color_type=0, bit_depth=8))})
    assert reply.status == 200, reply.body
    high = opened((await api.get(f"/user/avatar/{user['id']}/high")).raw)
    assert high.size == (1024, 1024) and high.getpixel((512, 512)) == (0, 0, 0)


async def test_uploads_that_decode_to_the_bound_at_once_stay_within_the_stated_worst_case(tmp_path: Path) -> None:
    # The probe: four 40-megapixel grayscale PNGs at once took the service past 1 GB, kept.
    # Now: at most two decode at once, each within MAX_DECODED_BYTES plus a reduced copy.
    uploads: list[tuple[str, str]] = [("gray", b64(flat_png(GRAY_BOMB, GRAY_BOMB, color_type=0, bit_depth=8))),
                                      ("gray+alpha", b64(flat_png(4096, 4096, color_type=4, bit_depth=8)))]
    async with running_service(tmp_path / "data") as service:
        pid = service.process.pid  # type: ignore[union-attr]
        clients: list[tuple[ApiClient, Any]] = []
        for n in range(8):
            client = service.client()
            clients.append((client, await client.sign_up(f"reader{n}")))
        before = status_mb(pid, "VmRSS")

        async def upload(n: int) -> int:
            client, user = clients[n]
            reply = await client.post(f"/user/update-image/{user['id']}", {"image": uploads[n % 2][1]})
            return reply.status

        assert await asyncio.gather(*(upload(n) for n in range(8))) == [200] * 8
        peak_added = status_mb(pid, "VmHWM") - before
        # Given back, not kept by the workers' arenas: a condition with a deadline, not a sleep.
        await until(lambda: status_mb(pid, "VmRSS") - before < 60, 10, "the decodes' memory given back")
        after_added = status_mb(pid, "VmRSS") - before
    print(f"8 uploads at the bound: peak {peak_added:.0f} MB above the idle service, {after_added:.0f} MB kept")
    # Each decode: the bound itself plus about 25 MB (the reduced copy, a band, the encoder);
    # the upload's own text and bytes (under 1 MB each here) are beside the point.
    worst_case_mb = MAX_DECODES_AT_ONCE * (MAX_DECODED_BYTES / 1048576 + 40)
    assert peak_added < worst_case_mb, (peak_added, worst_case_mb)
    assert after_added < 60, after_added  # given back, not kept by the workers' arenas


# What one upload may add to the service at its peak: the decode bound plus about 40 MB (the
# reduced copy, a band, the encoder, the upload's own text and bytes).
PER_UPLOAD_MB = MAX_DECODED_BYTES / 1048576 + 40


async def test_a_16383x1000_webp_is_refused_from_its_header_counting_the_decoders_copies(api: ApiClient) -> None:
    # 30 KB of file, 65 MB of RGBA: Pillow's WebP decoder holds it four times over (two canvases,
    # a copy handed over, the image), and took the service 238 MB above idle.
    user = await api.sign_up("alice")
    wide = image_bytes("WEBP", (16383, 1000), "teal", quality=50)
    assert len(wide) < 40_000
    reply = await api.post(f"/user/update-image/{user['id']}", {"image": b64(wide)})
    assert (reply.status, reply.body["data"]) == (
        400, "Image has too many pixels to decode (at most 4 megapixels for an image like this one)")
    assert (await api.get(f"/user/avatar/{user['id']}/high")).status == 404


def _first_scan_with_one_component(jpeg: bytes) -> bytes:
    """The same headers, but a first scan that holds one of the three components: libjpeg then
    keeps every coefficient until the last scan, as for a progressive file."""
    scan = jpeg.index(b"\xff\xda")
    assert jpeg[scan + 4] == 3
    return jpeg[:scan + 4] + b"\x01" + jpeg[scan + 5:]


async def test_a_jpeg_of_several_scans_counts_its_coefficients_at_full_size() -> None:
    # 20 megapixels: one scan decodes at half size (20 MB); several keep 60 MB of coefficients too.
    baseline = photo(5000, 4000, quality=85)
    assert render_avatar(baseline, MAX_PIXELS).high
    refused = "Image has too many pixels to decode (at most 16 megapixels for an image like this one)"
    for several_scans in (photo(5000, 4000, quality=85, progressive=True), _first_scan_with_one_component(baseline)):
        with pytest.raises(ImageRejected, match=re.escape(refused)):
            render_avatar(several_scans, MAX_PIXELS)


# Renders each file as the service's image workers do, in a process of its own, and prints the
# peak RSS each added (VmHWM, started again before each).
_RENDER_EACH = """
import json, re, sys
from pathlib import Path
from imaging import decode_upload, give_large_buffers_back_to_the_os, guard_decoding, render_avatar
from settings import Settings
from tests.images import b64

def status_mb(field):
    return int(re.search(field + r":\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024

give_large_buffers_back_to_the_os()
guard_decoding(Settings.model_fields["max_image_pixels"].default)
peaks = []
for path in sys.argv[1:]:
    text = b64(Path(path).read_bytes())
    Path("/proc/self/clear_refs").write_text("5")
    before = status_mb("VmRSS")
    render_avatar(decode_upload(text, Settings.model_fields["max_image_bytes"].default),
                  Settings.model_fields["max_image_pixels"].default)
    peaks.append(status_mb("VmHWM") - before)
print(json.dumps(peaks))
"""


async def test_the_largest_accepted_image_of_each_format_stays_within_the_per_upload_bound(tmp_path: Path) -> None:
    # Each format's accepted image that takes the most memory (a 40-megapixel grayscale PNG or
    # plain GIF takes 51 MB, a 40-megapixel baseline JPEG 38 MB); a little larger is refused.
    largest = {
        "PNG, RGBA, 16.8 megapixels": flat_png(4096, 4096, color_type=6, bit_depth=8),
        "GIF, first frame disposed of, 33.5 megapixels": gif_disposed_of((5792, 5792)),
        "WebP, 4.2 megapixels": image_bytes("WEBP", (2048, 2048), "teal", mode="RGBA", lossless=True),
        "JPEG, progressive, 16.6 megapixels": photo(4700, 3525, quality=85, progressive=True),
    }
    one_more = [flat_png(4096, 4097, color_type=6, bit_depth=8), gif_disposed_of((5793, 5793)),
                image_bytes("WEBP", (2048, 2049), "teal", mode="RGBA", lossless=True),
                photo(4750, 3562, quality=85, progressive=True)]
    for image in one_more:
        with pytest.raises(ImageRejected, match="Image has too many pixels to decode"):
            render_avatar(image, MAX_PIXELS)
    paths = []
    for n, image in enumerate(largest.values()):
        paths.append(tmp_path / f"{n}.image")
        paths[-1].write_bytes(image)
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", _RENDER_EACH, *map(str, paths)],
                                   cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    peaks = dict(zip(largest, json.loads(done.stdout), strict=True))
    print("\n".join(f"{name}: peak {mb:.0f} MB" for name, mb in peaks.items()))
    assert all(mb < PER_UPLOAD_MB for mb in peaks.values()), (peaks, PER_UPLOAD_MB)
