"""Avatar images with Pillow: decode and check an upload, then render the stored versions.

Everything here is synchronous and CPU-bound; the service runs it in a worker thread (Pillow
releases the GIL while decoding and resizing), so one large upload never stalls other requests.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
MAX_PIXELS = 40_000_000
HIGH_BOX = (1024, 1024)
SCALED_SIZE = (256, 256)
# WebP: every current browser shows it, it keeps transparency, and it is small.
OUTPUT_FORMAT = "WEBP"
OUTPUT_CONTENT_TYPE = "image/webp"
OUTPUT_QUALITY = 85

_DATA_URL = re.compile(r"^data:[\w.+-]+/[\w.+-]+(?:;[\w.+-]+=[\w.+-]+)*;base64,", re.IGNORECASE)
# Uploads are cleaned and decoded in pieces of this many characters (a multiple of 4).
PIECE = 1 << 20


class ImageRejected(ValueError):
    """The upload is not an image we take; the message says why, for the client."""


@dataclass(frozen=True)
class RenderedAvatar:
    high: bytes
    scaled: bytes
    content_type: str = OUTPUT_CONTENT_TYPE


def _size(count: int) -> str:
    return f"{count / 1048576:g} MB" if count >= 1048576 else f"{count / 1024:g} KB"


def decode_upload(text: str, max_bytes: int) -> bytes:
    """Base64 or a base64 data URL -> bytes, refusing more than `max_bytes` before decoding.

    An upload is megabytes of text: it is cleaned and decoded in pieces of `PIECE` characters,
    so that in a worker thread each step holds the GIL for a few milliseconds at most."""
    stripped = text.strip()
    prefix = _DATA_URL.match(stripped)
    payload = stripped[prefix.end():] if prefix else stripped
    payload = "".join("".join(payload[i:i + PIECE].split()) for i in range(0, len(payload), PIECE))
    if not payload:
        raise ImageRejected("Image is empty")
    if len(payload) * 3 // 4 > max_bytes + 3:
        raise ImageRejected(f"Image is larger than {_size(max_bytes)}")
    payload = payload.replace("-", "+").replace("_", "/")  # the URL-safe alphabet too
    payload += "=" * (-len(payload) % 4)
    try:
        # PIECE is a multiple of 4, so every piece but the last is whole base64 quanta.
        data = b"".join(base64.b64decode(payload[i:i + PIECE], validate=True)
                        for i in range(0, len(payload), PIECE))
    except (binascii.Error, ValueError):
        raise ImageRejected("Image is not valid base64") from None
    if len(data) > max_bytes:
        raise ImageRejected(f"Image is larger than {_size(max_bytes)}")
    return data


def _open_checked(data: bytes) -> Image.Image:
    """Opens the bytes as one of the accepted formats and checks the size from the header,
    before any pixel is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        raise ImageRejected("Image must be JPEG, PNG, WebP or GIF") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected("Image has too many pixels (at most 40 megapixels)") from None
    except (OSError, SyntaxError, ValueError):
        raise ImageRejected("Image data is corrupt") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageRejected("Image has no pixels")
    if width * height > MAX_PIXELS:
        raise ImageRejected("Image has too many pixels (at most 40 megapixels)")
    if image.format == "JPEG" and len(data) * 8 < _jpeg_blocks(width, height):
        # libjpeg fills missing data with gray instead of failing: a header that claims far more
        # pixels than the data can hold is a truncated (or forged) file.
        raise ImageRejected("Image data is truncated or corrupt")
    return image


def _jpeg_blocks(width: int, height: int) -> int:
    """8x8 luminance blocks. Even a flat colour costs each block several bits (a DC code and an
    end-of-block), so a real JPEG has at least one bit per block: a floor far below any real file."""
    return -(-width // 8) * -(-height // 8)


def _decoded(image: Image.Image) -> Image.Image:
    if image.format == "JPEG":
        # Decode at a reduced scale that is still at least the largest version we keep: a
        # 6000x4000 photo then costs a quarter or less of the memory and time.
        image.draft("RGB", HIGH_BOX)
    try:
        image.seek(0)  # a GIF's first frame
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError):
        raise ImageRejected("Image data is truncated or corrupt") from None
    oriented = ImageOps.exif_transpose(image)  # applies the EXIF orientation
    mode = "RGBA" if ("A" in oriented.getbands() or "transparency" in oriented.info) else "RGB"
    clean = oriented.convert(mode)
    clean.info = {}  # no EXIF, ICC, XMP or comments survive
    return clean


def _encode(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, OUTPUT_FORMAT, quality=OUTPUT_QUALITY, method=4, exif=b"", icc_profile=None)
    return out.getvalue()


def render_avatar(data: bytes) -> RenderedAvatar:
    """The `high` version (within 1024x1024, never upscaled) and the `scaled` 256x256 centre crop."""
    image = _decoded(_open_checked(data))
    high = image.copy()
    high.thumbnail(HIGH_BOX, Image.Resampling.LANCZOS)
    scaled = ImageOps.fit(image, SCALED_SIZE, Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    return RenderedAvatar(high=_encode(high), scaled=_encode(scaled))
