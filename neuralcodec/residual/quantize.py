"""Near-lossless quantization of the residual ``r = x - x̂`` (JPEG-LS's NEAR rule).

With step ``2K + 1`` the residual is coded as ``q = sign(r) · floor((|r| + K) / (2K + 1))``
and restored as ``x̂ + q · (2K + 1)`` clipped to 0..255, so every sample is within ``K`` of
the original (``K = 0``: lossless). The clip never moves a value away from ``x``, which
lies in 0..255 itself.
"""

from __future__ import annotations

import numpy as np


def step(max_error: int) -> int:
    """The quantization step for a maximum error ``K``: ``2K + 1``."""
    if max_error < 0:
        raise ValueError(f"max error must be at least 0, got {max_error}")
    return 2 * max_error + 1


def quantize(residual: np.ndarray, max_error: int) -> np.ndarray:
    """Integer residuals (any int dtype) -> their symbols for step ``2K + 1`` (int32)."""
    r = residual.astype(np.int32)
    return np.sign(r) * ((np.abs(r) + max_error) // step(max_error))


def restore(prediction: np.ndarray, symbols: np.ndarray, max_error: int) -> np.ndarray:
    """The decoded image: ``prediction`` (uint8) plus the dequantized symbols, clipped."""
    out = prediction.astype(np.int32) + symbols.astype(np.int32) * step(max_error)
    return np.clip(out, 0, 255).astype(np.uint8)
