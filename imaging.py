"""Avatar images with Pillow: decode and check an upload, then render the stored versions.

Everything here is synchronous and CPU-bound; the service runs it in a worker thread (Pillow
releases the GIL while decoding and resizing), so one large upload never stalls other requests.
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import ctypes.util
import io
import re
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
# The most memory decoding one image may take (a 39 KB PNG can claim 40 megapixels of RGBA: 160 MB).
# Everything after decoding works on a reduced copy of a few MB, so this bounds an upload's
# memory; the service runs at most MAX_DECODES_AT_ONCE of them (see web.services).
MAX_DECODED_BYTES = 64 * 1024 * 1024
MAX_DECODES_AT_ONCE = 2
# Bytes per pixel of Pillow's decoded image, by mode; every other mode takes 4.
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
# What Pillow 13 holds at the peak of a decode beside the decoded image, as multiples of it
# (measured with VmHWM, see docs/api.md): every WebP is read by libwebp's animation decoder, which
# keeps two canvases of the image and hands the frame over as a copy, which Pillow copies again
# into the image (4 in all); a GIF whose first frame is disposed of (disposal 2 or 3) keeps a
# second copy of it to dispose of it with (2).
_WEBP_COPIES = 4
_DISPOSED_GIF_COPIES = 2
_JPEG_FORMATS = ("JPEG", "MPO")  # MPO: a JPEG with more pictures after the first
# libjpeg holds a multi-scan (progressive) JPEG's whole DCT coefficients until the last scan: 64
# coefficients of 2 bytes per 8x8 block of each component, at full size even when it decodes
# at a reduced scale.
_COEFFICIENT_BLOCK_BYTES = 64 * 2
# About this many bytes of the decoded image are converted and reduced at a time, so that no
# full-size copy is made.
BAND_BYTES = 4 * 1024 * 1024
HIGH_BOX = (1024, 1024)
SCALED_SIZE = (256, 256)
# WebP: every current browser shows it, it keeps transparency, and it is small.
OUTPUT_FORMAT = "WEBP"
OUTPUT_CONTENT_TYPE = "image/webp"
OUTPUT_QUALITY = 85

# No `^`: matched with `match(text, start)`, which anchors at `start` (a `^` would not match there).
_DATA_URL = re.compile(r"data:[\w.+-]+/[\w.+-]+(?:;[\w.+-]+=[\w.+-]+)*;base64,", re.IGNORECASE)
TRUNCATED = "Image data is truncated or corrupt"
# Uploads are measured, cleaned and decoded in pieces of this many characters: a call on one
# piece holds the GIL about a millisecond (a 1 MB piece's base64 decode took up to 7 ms).
PIECE = 1 << 18
# A data URL's `data:<type>/<subtype>;<parameters>;base64,` is read from this many characters at
# most; a longer one is not taken for a prefix (and ":" is not base64).
DATA_URL_PREFIX_MAX = 256


# glibc's mallopt parameter: allocations from this size up are mapped from the OS and given back
# whole when freed. Left alone, glibc raises the threshold after the first large free, and the
# image workers' arenas keep hundreds of MB after a burst of large uploads.
_M_MMAP_THRESHOLD = -3
LARGE_BUFFER_BYTES = 1024 * 1024


def guard_decoding(max_pixels: int) -> None:
    """Set once at start (server.py), for every thread: an image whose header claims more than
    `max_pixels` is refused by `Image.open` itself, before any pixel is decoded, wherever in the
    process it is opened. (A `catch_warnings` block per call would change process-wide state from
    worker threads, which is not thread-safe.) `render_avatar` checks its own limit too."""
    Image.MAX_IMAGE_PIXELS = max_pixels
    warnings.simplefilter("error", Image.DecompressionBombWarning)


def _too_large(max_bytes: int) -> ImageRejected:
    return ImageRejected(f"Image is larger than {_size(max_bytes)}")


def _too_many_pixels(max_pixels: int) -> ImageRejected:
    return ImageRejected(f"Image has too many pixels (at most {max_pixels / 1e6:g} megapixels)")


def give_large_buffers_back_to_the_os() -> bool:
    """Called once at start; False where the C library is not glibc (nothing changes there)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return bool(libc is not None and libc.mallopt(_M_MMAP_THRESHOLD, LARGE_BUFFER_BYTES))
    except (OSError, AttributeError):
        return False


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

    An upload is megabytes of text, and a C call holds the GIL until it returns, stalling the
    event loop from a worker thread. So no call here copies or scans the whole text: it is
    measured, cleaned and decoded `PIECE` characters at a time (whole-text copies held the GIL
    up to 20 ms each for the largest upload)."""
    start, end = _payload_span(text)
    # Looked for in the first DATA_URL_PREFIX_MAX characters only: matched against the whole
    # text, a prefix that never ends (`data:a/b;a=b;a=b...`) held the GIL 1.5 s.
    prefix = _DATA_URL.match(text, start, min(end, start + DATA_URL_PREFIX_MAX))
    if prefix:
        start = prefix.end()
    pieces = range(start, end, PIECE)
    length = sum(len("".join(text[i:min(i + PIECE, end)].split())) for i in pieces)
    if not length:
        raise ImageRejected("Image is empty")
    if length * 3 // 4 > max_bytes + 3:
        raise _too_large(max_bytes)
    # Whole quanta are decoded as they come, but the last one seen waits with what follows it, so
    # that the last call sees the data's end, and the padding rules, as a decode of the whole text
    # would. After the first "=" only more "=" may follow (anything else is refused, as it is
    # whole); a run of them answers alike from three on, so at most eight are kept.
    # Written to as decoded, not joined at the end: a join of megabytes is one call of 10 ms (the
    # page faults of a new 8 MB buffer), while the buffer grows in place a piece at a time.
    decoded = io.BytesIO()
    carry = ""
    padded: int | None = None  # how many "=" from the first on, once one is seen
    for i in pieces:
        # The URL-safe alphabet too.
        cleaned = "".join(text[i:min(i + PIECE, end)].split()).replace("-", "+").replace("_", "/")
        if padded is None:
            piece = carry + cleaned
            first = piece.find("=")
            ready = max(0, (first if first >= 0 else len(piece)) // 4 * 4 - 4)
            decoded.write(_from_base64(piece[:ready]))
            if first < 0:
                carry = piece[ready:]
                continue
            carry, cleaned, padded = piece[ready:first], piece[first:], 0
        if cleaned.strip("="):
            raise _not_base64()
        padded += len(cleaned)
    rest = carry + "=" * min(padded or 0, 8)
    decoded.write(_from_base64(rest + "=" * (-len(rest) % 4)))
    data = decoded.getvalue()
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    return data


def _from_base64(quanta: str) -> bytes:
    try:
        return base64.b64decode(quanta, validate=True)
    except (binascii.Error, ValueError):
        raise _not_base64() from None


def _not_base64() -> ImageRejected:
    return ImageRejected("Image is not valid base64")


def _payload_span(text: str) -> tuple[int, int]:
    """Where `text` is without its leading and trailing whitespace, found a piece at a time."""
    start, end = 0, len(text)
    while start < end:
        head = text[start:start + PIECE]
        stripped = head.lstrip()
        start += len(head) - len(stripped)
        if stripped:
            break
    while end > start:
        tail = text[max(start, end - PIECE):end]
        stripped = tail.rstrip()
        end -= len(tail) - len(stripped)
        if stripped:
            break
    return start, end


def _open_checked(data: bytes, max_pixels: int) -> Image.Image:
    """Opens the bytes as one of the accepted formats and checks the size from the header
    against `max_pixels`, before any pixel is decoded."""
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        raise ImageRejected("Image must be JPEG, PNG, WebP or GIF") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(max_pixels) from None
    except (OSError, SyntaxError, ValueError):
        raise ImageRejected("Image data is corrupt") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageRejected("Image has no pixels")
    if width * height > max_pixels:
        # The setting of the app at hand; Pillow's own check (`guard_decoding`) is the process's.
        raise _too_many_pixels(max_pixels)
    if image.format == "JPEG" and len(data) * 8 < _jpeg_blocks(width, height):
        # libjpeg fills missing data with gray instead of failing: a header that claims far more
        # pixels than the data can hold is a truncated (or forged) file.
        raise ImageRejected(TRUNCATED)
    return image


def _jpeg_blocks(width: int, height: int) -> int:
    """8x8 luminance blocks. Even a flat colour costs each block several bits (a DC code and an
    end-of-block), so a real JPEG has at least one bit per block: a floor far below any real file."""
    return -(-width // 8) * -(-height // 8)


def decoded_bytes(image: Image.Image) -> int:
    """What decoding `image` as it stands (after any `draft`) costs in memory at its peak,
    besides a JPEG's coefficients (`_jpeg_coefficient_bytes`)."""
    width, height = image.size
    decoded = width * height * _BYTES_PER_PIXEL.get(image.mode, 4)
    if image.format == "WEBP":
        return decoded * _WEBP_COPIES
    if image.format == "GIF" and getattr(image, "disposal_method", 0) >= 2:
        return decoded * _DISPOSED_GIF_COPIES
    return decoded


def _jpeg_coefficient_bytes(image: Image.Image, data: bytes) -> int:
    """The coefficient buffer libjpeg allocates for `image` at its full size (call it before
    `draft`), or 0 for a JPEG of one scan, which it decodes a row of blocks at a time."""
    # (id, h, v, table) per component: an attribute of Pillow's JPEG image, not of Image.Image.
    components = image.layer  # type: ignore[attr-defined]
    if not components or not (image.info.get("progressive") or _first_scan_components(data) != len(components)):
        return 0
    width, height = image.size
    most_h = max(h for _, h, _, _ in components)
    most_v = max(v for _, _, v, _ in components)
    blocks = 0
    for _, h, v, _ in components:
        # As libjpeg sizes it: the component's blocks, rounded up to whole sampling units.
        across = -(-width * h // (8 * most_h))
        down = -(-height * v // (8 * most_v))
        blocks += -(-across // h) * h * -(-down // v) * v
    return blocks * _COEFFICIENT_BLOCK_BYTES


def _first_scan_components(data: bytes) -> int | None:
    """How many components the first scan of a JPEG holds: fewer than the image has means
    several scans (None when the headers end before a scan; counted as several)."""
    position = 2  # after the start-of-image marker
    while True:
        position = data.find(b"\xff", position)  # libjpeg skips anything between markers too
        if position < 0 or position + 4 >= len(data):
            return None
        marker = data[position + 1]
        if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD7:
            position += 1 if marker == 0xFF else 2  # a fill byte, or a marker without a segment
            continue
        if marker == 0xDA:
            return data[position + 4]
        position += 2 + int.from_bytes(data[position + 2:position + 4], "big")


def _decoded(image: Image.Image, data: bytes) -> Image.Image:
    """The pixels, reduced to at most about twice the `high` box, in RGB or RGBA, EXIF
    orientation applied, no metadata. The full-size decode is the only full-size image made."""
    width, height = image.size
    cost = 0
    if image.format in _JPEG_FORMATS:
        cost = _jpeg_coefficient_bytes(image, data)
        # Decode at a reduced scale that is still at least the largest version we keep: a
        # 6000x4000 photo then costs a quarter or less of the memory and time.
        image.draft("RGB", HIGH_BOX)
    cost += decoded_bytes(image)
    if cost > MAX_DECODED_BYTES:
        megapixels = MAX_DECODED_BYTES * width * height // cost // 1_000_000
        raise ImageRejected(f"Image has too many pixels to decode (at most {megapixels} megapixels "
                            f"for an image like this one)")
    try:
        image.seek(0)  # a GIF's first frame
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError):
        raise ImageRejected(TRUNCATED) from None
    mode = "RGBA" if ("A" in image.getbands() or "transparency" in image.info) else "RGB"
    exif = image.getexif()
    reduced = _reduce_in_bands(image, mode)
    if exif:
        reduced.info["exif"] = exif.tobytes()
        reduced = ImageOps.exif_transpose(reduced)  # on the small copy: the same picture
    reduced.info = {}  # no EXIF, ICC, XMP or comments survive
    return reduced


def _reduce_in_bands(image: Image.Image, mode: str) -> Image.Image:
    """`image` converted to `mode` and box-reduced by the largest whole factor that keeps it at
    least as large as its `high` version (so at most twice that), a band of rows at a time: converting
    or premultiplying a 40-megapixel image whole would copy it whole."""
    width, height = image.size
    factor = max(1, int(max(width / HIGH_BOX[0], height / HIGH_BOX[1])))
    if factor == 1:
        return image.convert(mode)  # already within twice the box: a copy of at most 16 MB
    rows = factor * max(1, BAND_BYTES // (width * 4 * factor))
    reduced = Image.new(mode, (-(-width // factor), -(-height // factor)))
    for top in range(0, height, rows):
        band = image.crop((0, top, width, min(height, top + rows))).convert(mode)
        reduced.paste(band.reduce(factor), (0, top // factor))
    return reduced


def _encode(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, OUTPUT_FORMAT, quality=OUTPUT_QUALITY, method=4, exif=b"", icc_profile=None)
    return out.getvalue()


def render_avatar(data: bytes, max_pixels: int) -> RenderedAvatar:
    """The `high` version (within 1024x1024, never upscaled) and the `scaled` 256x256 centre crop,
    of an image of at most `max_pixels`."""
    image = _decoded(_open_checked(data, max_pixels), data)
    high = image.copy()
    high.thumbnail(HIGH_BOX, Image.Resampling.LANCZOS)
    scaled = ImageOps.fit(image, SCALED_SIZE, Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    return RenderedAvatar(high=_encode(high), scaled=_encode(scaled))
