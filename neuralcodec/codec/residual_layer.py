"""The residual layer in files (issue 41): one ``RESD`` chunk per tile, coding the
residual between the image and the *final* reconstruction (the base layer decoded with
the exact synthesis, tiles cross-faded) over that tile's box, with step 2K + 1, so that
every decoded sample is within K of the input (K = 0: lossless). Alpha is not here: it
is lossless in ``ALPH`` already.

The functions that code one tile's region take and give arrays only, so they run in the
calling process or in a tile worker alike (:class:`~.workers.TileWorkers.run`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from ..errors import AecError, CorruptFileError
from ..format.residual import ResidualChunk
from ..metrics import psnr
from ..residual.quantize import quantize, restore
from ..version import __version__

_FINGERPRINT_BYTES = 8


def residual_model(name: str | None = None) -> Any:
    """The residual model ``name`` (default: the default one), loaded once per process."""
    from ..residual.layer import DEFAULT_RESIDUAL_MODEL, load_residual_model

    return load_residual_model(name or DEFAULT_RESIDUAL_MODEL)


def residual_layer_here(model: str) -> bool:
    """Whether files of base model ``model`` can have the residual layer here: it is one
    of the layer's base models and the default residual model is installed."""
    from .options import RESIDUAL_BASE_MODELS

    if model not in RESIDUAL_BASE_MODELS:
        return False
    try:
        residual_model()
    except AecError:
        return False
    return True


def colour_array(image: Image.Image) -> np.ndarray:
    """An L or RGB image as uint8 (H, W, C), C = 1 or 3: what the residual model codes."""
    a = np.asarray(image)
    return a[..., None] if a.ndim == 2 else a


def encode_region(image: np.ndarray, xhat: np.ndarray, max_error: int, quality: float,
                  model: str | None = None) -> bytes:
    """The ``RESD`` chunk of one tile's box: ``image`` and its final reconstruction
    ``xhat`` (uint8 (H, W, C)), coded at maximum error K against the base's ``quality``
    (the value the decoder reads back from the file)."""
    layer = residual_model(model)
    if not 0 <= max_error <= layer.max_error_limit:
        raise AecError(f"residual model '{layer.name}' codes maximum errors 0.."
                       f"{layer.max_error_limit}, not {max_error}", field="max_error")
    payload = layer.encode(image, xhat, max_error, quality)
    fingerprint = bytes.fromhex(layer.fingerprint)[:_FINGERPRINT_BYTES]
    return ResidualChunk(max_error, layer.name, fingerprint, payload).pack()


def decode_region(chunk: bytes, xhat: np.ndarray, quality: float) -> np.ndarray:
    """One tile's box decoded from its ``RESD`` chunk and its final reconstruction."""
    resd = ResidualChunk.unpack(chunk)
    layer = _model_of(resd)
    if resd.max_error > layer.max_error_limit:
        raise CorruptFileError(f"chunk RESD gives a maximum error of {resd.max_error}, above "
                               f"its model's {layer.max_error_limit}")
    return layer.decode(resd.payload, xhat, resd.max_error, quality)


def _model_of(resd: ResidualChunk) -> Any:
    """The installed residual model a chunk names, with the same weights."""
    try:
        layer = residual_model(resd.model)
    except AecError:
        raise AecError(f"needs residual model '{resd.model}' (fingerprint "
                       f"{resd.fingerprint.hex()}), which aec {__version__} does not have "
                       "(pip install -U neuralcodec)") from None
    if bytes.fromhex(layer.fingerprint)[:_FINGERPRINT_BYTES] != resd.fingerprint:
        raise AecError(f"file was made with other weights of residual model '{resd.model}' "
                       f"(file {resd.fingerprint.hex()}, installed "
                       f"{layer.fingerprint[:2 * _FINGERPRINT_BYTES]})")
    return layer


def largest_error(a: np.ndarray, b: np.ndarray) -> int:
    """The largest difference between two uint8 arrays' samples."""
    if a.size == 0:
        return 0
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


def psnr_with(image: np.ndarray, xhat: np.ndarray, max_error: int) -> float:
    """The PSNR a residual layer of maximum error K gives over ``xhat``, known before any
    entropy coding (the quantization decides every decoded sample)."""
    restored = restore(xhat, quantize(image.astype(np.int16) - xhat, max_error), max_error)
    return psnr(image, restored)
