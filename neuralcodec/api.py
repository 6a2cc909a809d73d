"""One-call encoding and decoding with a process-wide codec per model (loaded on first
use, so importing this stays light)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .format.quality import DEFAULT_QUALITY

if TYPE_CHECKING:
    from PIL import Image

    from .codec import Codec
    from .codec.prepare import ImageSource
    from .io.files import DataSource

_default_codecs: dict[str | None, Codec] = {}


def default_codec(model: str | None = None) -> Codec:
    """A process-wide codec per model, so one-off calls load weights only once."""
    codec = _default_codecs.get(model)
    if codec is None:
        from .codec import Codec

        codec = _default_codecs[model] = Codec(model)
    return codec


def encode(image: ImageSource, quality: float = DEFAULT_QUALITY, model: str | None = None,
           effort: int = 1) -> bytes:
    """Compress an image (a PIL image, a path, a binary file object or a uint8 array of
    shape (H, W), (H, W, 3) or (H, W, 4)) to .aec bytes at ``quality`` (0..100, higher
    is better); ``effort`` > 1 spends encoding time for a smaller file (see
    :meth:`neuralcodec.Codec.encode`)."""
    return default_codec(model).encode(image, quality, effort=effort)


def decode(data: DataSource) -> Image.Image:
    """Restore the image stored in a .aec file: its bytes, its path or a binary file
    object."""
    return default_codec().decode(data)
