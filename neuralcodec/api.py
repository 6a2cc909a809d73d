"""One-call encoding and decoding with a process-wide codec per model (loaded on first
use, so importing this stays light)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .format.quality import DEFAULT_QUALITY

if TYPE_CHECKING:
    from PIL import Image

    from .codec import Codec

_default_codecs: dict[str | None, Codec] = {}


def default_codec(model: str | None = None) -> Codec:
    """A process-wide codec per model, so one-off calls load weights only once."""
    codec = _default_codecs.get(model)
    if codec is None:
        from .codec import Codec

        codec = _default_codecs[model] = Codec(model)
    return codec


def encode(
    image: Image.Image | str | Path, quality: float = DEFAULT_QUALITY, model: str | None = None
) -> bytes:
    """Compress an image to .aec bytes at ``quality`` (0..100, higher is better)."""
    return default_codec(model).encode(image, quality)


def decode(data: bytes) -> Image.Image:
    """Restore the image stored in .aec bytes."""
    return default_codec().decode(data)
