"""aec: a learned image codec (mean-scale hyperprior with checkerboard context).

>>> import neuralcodec
>>> data = neuralcodec.encode(image, quality=60)   # PIL image or path -> .aec bytes
>>> image = neuralcodec.decode(data)                # -> PIL.Image.Image

Importing the package also registers the ``.aec`` format with Pillow, so
``Image.open("x.aec")`` and ``im.save("x.aec", quality=60)`` work.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from .codec import DEFAULT_QUALITY, Codec, describe
from .errors import AecError, CorruptFileError
from .registry import DEFAULT_MODEL, available_models

__version__ = "0.1.0"

_default_codecs: dict[str | None, Codec] = {}


def default_codec(model: str | None = None) -> Codec:
    """A process-wide codec per model, so one-off calls load weights only once."""
    codec = _default_codecs.get(model)
    if codec is None:
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


from . import pillow_plugin  # noqa: E402,F401  (registers the Pillow format)

__all__ = [
    "AecError",
    "Codec",
    "CorruptFileError",
    "DEFAULT_MODEL",
    "available_models",
    "decode",
    "describe",
    "encode",
]
