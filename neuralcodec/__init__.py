"""aec: a learned image codec (mean-scale hyperprior with checkerboard context).

>>> import neuralcodec
>>> data = neuralcodec.encode(image, quality=60)   # PIL image or path -> .aec bytes
>>> image = neuralcodec.decode(data)                # -> PIL.Image.Image

Importing the package registers the ``.aec`` format with Pillow, so
``Image.open("x.aec")`` and ``im.save("x.aec", quality=60)`` work. It imports no torch:
the codec loads on first use.

The package follows the data path::

    io/        image and file I/O: modes, alpha, metadata, tensors, atomic writes
    families/  model families (transform + latent codec), the model zoo, weights
    entropy/   integer tables and constriction's range coder
    format/    the .aec container, tile grid, chunk tags, stored quality
    codec/     Codec: image <-> tiles <-> family <-> container
    cli/       the aec command, a thin layer over the above
    training/  one training loop and a step per family
    bench/     rate-distortion and speed against classical codecs
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import families, pillow_plugin  # noqa: F401  (register the built-in model families

# and their chunk tags, and the Pillow format; neither imports torch)
from .errors import AecError, CorruptFileError
from .format.quality import DEFAULT_QUALITY

if TYPE_CHECKING:
    from PIL import Image

    from .codec import Codec

__version__ = "0.1.0"

# Attributes loaded on first access, so `import neuralcodec` stays light.
_LAZY = {
    "Codec": "neuralcodec.codec",
    "describe": "neuralcodec.codec",
    "DEFAULT_MODEL": "neuralcodec.families.zoo",
    "available_models": "neuralcodec.families.zoo",
}

_default_codecs: dict[str | None, Codec] = {}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'neuralcodec' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


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


__all__ = [
    "AecError",
    "Codec",
    "CorruptFileError",
    "DEFAULT_MODEL",
    "DEFAULT_QUALITY",
    "available_models",
    "decode",
    "describe",
    "encode",
]
