"""Letter textures for the Distinguish task's boxes, drawn with Pillow's built-in scalable font.

Dark, stroked capitals on a light square, so they stay legible at the small image sizes a tiny
model sees. Returned as PNG bytes for MuJoCo's in-memory assets. Decals that face outward with a
yaw rotation read correctly without mirroring the image (checked against MuJoCo 4.0 by the
letter-legibility test).
"""

from __future__ import annotations

import functools
import io

from PIL import Image, ImageDraw, ImageFont

TEXTURE_SIZE = 64


@functools.lru_cache(maxsize=64)
def letter_png(letter: str, size: int = TEXTURE_SIZE) -> bytes:
    if len(letter) > 1:
        raise ValueError(f"one character (or none) per texture, got {letter!r}")
    image = Image.new("RGB", (size, size), (235, 235, 230))
    if letter:
        draw = ImageDraw.Draw(image)
        font = ImageFont.load_default(size=int(size * 0.78))
        draw.text(
            (size / 2, size / 2),
            letter,
            fill=(15, 15, 15),
            font=font,
            anchor="mm",
            stroke_width=max(1, size // 24),
            stroke_fill=(15, 15, 15),
        )
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
