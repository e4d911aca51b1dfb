"""Real images made with Pillow, for upload tests."""

from __future__ import annotations

import base64
import io
import struct
import zlib

from PIL import Image


def image_bytes(fmt: str, size: tuple[int, int] = (640, 480), color: str = "red", mode: str = "RGB",
                **save: object) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, fmt, **save)
    return buffer.getvalue()


def two_frame_gif() -> bytes:
    """First frame red, second blue: only the first may be kept."""
    frames = [Image.new("RGB", (300, 200), "red"), Image.new("RGB", (300, 200), "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


def photo_with_exif(orientation: int = 6) -> bytes:
    """A 400x200 JPEG whose EXIF says 'rotate 90° clockwise', with a maker note and camera make."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x927C] = b"SECRET-MAKER-NOTE"
    exif[0x010F] = "SecretCameraMaker"
    image = Image.new("RGB", (400, 200), "white")
    image.paste(Image.new("RGB", (200, 200), "black"), (0, 0))  # left half black: shows the rotation
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes(), quality=95)
    return buffer.getvalue()


def photo(width: int, height: int, fmt: str = "JPEG", **save: object) -> bytes:
    """A smooth random picture, which a JPEG cannot squeeze to nothing (as it can a flat colour)."""
    small = Image.effect_noise((max(1, width // 32), max(1, height // 32)), 64).convert("L")
    channels = [small, small.transpose(Image.Transpose.FLIP_TOP_BOTTOM), small.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    buffer = io.BytesIO()
    Image.merge("RGB", channels).resize((width, height), Image.Resampling.BILINEAR).save(buffer, fmt, **save)
    return buffer.getvalue()


def gif_disposed_of(size: tuple[int, int]) -> bytes:
    """Two frames, the first disposed of to the background: Pillow keeps a copy of it to do so."""
    frames = [Image.new("P", size, 3), Image.new("P", size, 5)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], disposal=2, transparency=3)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{b64(data)}"


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def flat_png(width: int, height: int, *, color_type: int, bit_depth: int) -> bytes:
    """A PNG of zeros written by hand (Pillow cannot write 16-bit colour): a few KB of file for
    any number of pixels, the shape of a decompression bomb that stays under the pixel cap.
    color_type: 0 gray, 2 RGB, 4 gray+alpha, 6 RGBA."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
    row = b"\0" * (1 + width * channels * bit_depth // 8)  # filter byte 0, then the samples
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
