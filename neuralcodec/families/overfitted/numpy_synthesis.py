"""The decoder's float part in NumPy (no torch): upsampling of the latent pyramid and the
synthesis, from the quantized parameters. The same operations as :mod:`.model`'s
``synthesize``; pixels may differ from torch's by float rounding only."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .architecture import OverfitArchitecture
from .parameters import dequantize


def _upsample_axis(x: np.ndarray, half: np.ndarray, axis: int) -> np.ndarray:
    """x2 along ``axis`` with the symmetric kernel (half, mirrored), edge samples repeated:
    output 2p sits at input p - 1/4 and 2p + 1 at p + 1/4 (see ``model.upsample2``)."""
    a, b, c, d = (np.float32(v) for v in half)
    n = x.shape[axis]
    pad = [(0, 0)] * x.ndim
    pad[axis] = (2, 2)
    xp = np.pad(x, pad, mode="edge")

    def at(k: int) -> np.ndarray:  # xp[p + k] for p = 0 .. n-1
        return np.take(xp, np.arange(k, k + n), axis=axis)

    x0, x1, x2, x3, x4 = (at(k) for k in range(5))
    even = a * x0 + c * x1 + d * x2 + b * x3
    odd = b * x1 + d * x2 + c * x3 + a * x4
    out = np.stack([even, odd], axis=axis + 1)
    shape = list(x.shape)
    shape[axis] = 2 * n
    return out.reshape(shape)


def synthesize(arch: OverfitArchitecture, latents: list[np.ndarray],
               parameters: Mapping[str, tuple[np.ndarray, int]]) -> np.ndarray:
    """RGB (H, W, 3) float32, nominally in [0, 1], from the integer latent grids."""
    p = {name: dequantize(q, bits).astype(np.float32) for name, (q, bits) in parameters.items()}
    x = latents[-1].astype(np.float32)[..., None]  # (h, w, channels)
    for j in range(len(latents) - 2, -1, -1):
        half = p["upsampling"][j]
        x = _upsample_axis(_upsample_axis(x, half, 1), half, 0)
        x = np.concatenate([latents[j].astype(np.float32)[..., None], x], axis=2)
    for i, spec in enumerate(arch.synthesis):
        w, bias = p[f"synthesis.{i}.weight"], p[f"synthesis.{i}.bias"]  # (out, in, k, k)
        h, wd = x.shape[:2]
        if spec.k == 1:
            y = x.reshape(-1, spec.cin) @ w[:, :, 0, 0].T + bias
        else:
            r = spec.k // 2
            xp = np.pad(x, ((r, r), (r, r), (0, 0)), mode="edge")
            y = np.broadcast_to(bias, (h * wd, spec.cout)).copy()
            for dy in range(spec.k):
                for dx in range(spec.k):
                    y += xp[dy:dy + h, dx:dx + wd].reshape(-1, spec.cin) @ w[:, :, dy, dx].T
        y = y.reshape(h, wd, spec.cout)
        if spec.relu:
            np.maximum(y, 0, out=y)
        if spec.residual:
            y += x
        x = y
    return x + np.float32(0.5)
