"""Real images made with Pillow, for upload tests."""

from __future__ import annotations

import base64
import io

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


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{b64(data)}"


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
