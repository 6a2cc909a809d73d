"""aec: a learned image codec; its model families (``aec models``) write one documented
container, .aec.

>>> import neuralcodec
>>> data = neuralcodec.encode(image, quality=60)   # PIL image or path -> .aec bytes
>>> image = neuralcodec.decode(data)                # -> PIL.Image.Image
>>> data = neuralcodec.encode_with(image, neuralcodec.EncodeOptions(bpp=0.5, effort=2))

Importing the package registers the ``.aec`` format with Pillow, so
``Image.open("x.aec")`` and ``im.save("x.aec", quality=60)`` work. It imports no torch,
and the codec, loaded on first use, codes on a CPU without it (PyTorch is the
``neuralcodec[torch]`` extra: training, CUDA, encoder effort).

The package follows the data path::

    io/        image and file I/O: modes, alpha, metadata, pixel arrays, atomic writes
    families/  model families (transform + latent codec), the model zoo, weights
    entropy/   integer tables and constriction's range coder
    format/    the .aec container, tile grid, chunk tags, stored quality
    codec/     Codec: image <-> tiles <-> family <-> container
    cli/       the aec command, a thin layer over the above
    training/  one training loop and a step per family
    bench/     rate-distortion and speed against classical codecs
"""

from __future__ import annotations

from .cpu import name_blas_kernels

name_blas_kernels()  # before anything imports NumPy (see neuralcodec.cpu)

# Registering the built-in model families (and their chunk tags) and the Pillow format
# imports no torch; neither does the API below until it codes something.
from . import families, pillow_plugin  # noqa: F401
from .api import decode, default_codec, encode, encode_with
from .codec.options import DecodeOptions, EncodeOptions
from .errors import AecError, AecWarning, CorruptFileError
from .format.quality import DEFAULT_QUALITY
from .lazy import lazy_attributes
from .version import __version__ as __version__

# Attributes loaded on first access, so `import neuralcodec` stays light.
_LAZY = {
    "Codec": "neuralcodec.codec",
    "describe": "neuralcodec.format.inspect",
    "DEFAULT_MODEL": "neuralcodec.families.zoo",
    "available_models": "neuralcodec.families.zoo",
}


__getattr__ = lazy_attributes(__name__, _LAZY)


__all__ = [
    "AecError",
    "AecWarning",
    "Codec",
    "CorruptFileError",
    "DEFAULT_MODEL",
    "DEFAULT_QUALITY",
    "DecodeOptions",
    "EncodeOptions",
    "available_models",
    "decode",
    "default_codec",
    "describe",
    "encode",
    "encode_with",
]
