"""The alpha band, stored losslessly beside the learned colour coding."""

from __future__ import annotations

import io

from PIL import Image

from ..errors import CorruptFileError


def encode_alpha(alpha: Image.Image) -> bytes:
    """Alpha band stored losslessly (PNG-compressed 8-bit)."""
    buf = io.BytesIO()
    alpha.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def decode_alpha(data: bytes, size: tuple[int, int]) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            alpha = im.convert("L")
    except Exception as exc:  # any decoder failure of the embedded PNG means damage
        raise CorruptFileError(f"alpha chunk is damaged ({exc})") from None
    if alpha.size != size:
        raise CorruptFileError("alpha chunk does not match the image size")
    return alpha
