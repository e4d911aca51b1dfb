"""Decoding memory: an upload that decodes to more than the per-image bound is refused from its
header; what is accepted is decoded once at full size and reduced a band at a time; at most two
decode at once; large buffers go back to the OS afterwards."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from imaging import MAX_DECODED_BYTES, MAX_DECODES_AT_ONCE
from tests.api_client import ApiClient
from tests.images import b64, flat_png, opened
from tests.service_process import running_service

pytestmark = pytest.mark.asyncio

# 6324x6324 = 39.99 megapixels: under the pixel cap. A few KB to 300 KB of file each.
GRAY_BOMB = 6324


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
        await asyncio.sleep(0.5)
        after_added = status_mb(pid, "VmRSS") - before
    print(f"8 uploads at the bound: peak {peak_added:.0f} MB above the idle service, {after_added:.0f} MB kept")
    # Each decode: the bound itself plus about 25 MB (the reduced copy, a band, the encoder);
    # the upload's own text and bytes (under 1 MB each here) are beside the point.
    worst_case_mb = MAX_DECODES_AT_ONCE * (MAX_DECODED_BYTES / 1048576 + 40)
    assert peak_added < worst_case_mb, (peak_added, worst_case_mb)
    assert after_added < 60, after_added  # given back, not kept by the workers' arenas
