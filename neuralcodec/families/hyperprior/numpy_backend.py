"""The hyperprior's transforms on NumPy (:class:`~..transforms.Transforms`, no torch):
``g_a``, ``h_a`` and ``g_s`` as NumPy layers (:mod:`..numpy_layers`) built from the
networks' description (:mod:`.architecture`) and a weights file's arrays, with the
rate-level gains. The CPU's backend: coding there needs neither torch nor CompressAI.
Every family on these transforms (hyperprior, channel-context) uses it as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..numpy_layers import GDN, Conv2d, ConvTranspose2d
from ..specs import Conv, Layer, LeakyReLU
from . import architecture

LEAKY_SLOPE = np.float32(0.01)


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def gdn_parameter(state: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    """GDN's effective ``beta`` or ``gamma`` from its stored reparametrization:
    ``max(p, bound)**2 - pedestal``, in float32 as torch computes it."""
    p = _f32(state[name])
    bound = _f32(state[f"{name}_reparam.lower_bound.bound"])
    pedestal = _f32(state[f"{name}_reparam.pedestal"])
    return np.maximum(p, bound) ** 2 - pedestal


class NumpyNetwork:
    """A described network (see :mod:`..specs`) on (h, w, C) float32 arrays."""

    def __init__(self, network: tuple[Layer, ...], state: Mapping[str, np.ndarray],
                 prefix: str):
        self.layers: list[Any] = []
        for i, spec in enumerate(network):
            name = f"{prefix}.{i}"
            if isinstance(spec, Conv):
                weight, bias = _f32(state[f"{name}.weight"]), _f32(state[f"{name}.bias"])
                self.layers.append(
                    ConvTranspose2d(weight, bias, spec.stride, spec.padding,
                                    spec.output_padding) if spec.transposed
                    else Conv2d(weight, bias, spec.stride, spec.padding))
            elif isinstance(spec, LeakyReLU):
                self.layers.append(_leaky_relu)
            else:
                gdn = GDN(gdn_parameter(state, f"{name}.beta"),
                          gdn_parameter(state, f"{name}.gamma"), spec.inverse)
                self.layers.append(lambda x, gdn=gdn: gdn(x, out=x))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        # Convolutions make new arrays; the activations then work in place on them (a
        # network never starts with one, so the caller's array is never written).
        for layer in self.layers:
            x = layer(x)
        return x


def _leaky_relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, x * LEAKY_SLOPE, out=x)


class GainBank:
    """Per-level channel gains, interpolated geometrically (as the model's, in float32)."""

    def __init__(self, log_gain: np.ndarray):
        self.log_gain = _f32(log_gain)

    def __call__(self, level: float) -> np.ndarray:
        levels = self.log_gain.shape[0]
        level32 = np.float32(min(max(level, 0.0), levels - 1))
        lo = min(int(np.floor(level32)), levels - 2)
        frac = level32 - np.float32(lo)
        log_gain = (np.float32(1) - frac) * self.log_gain[lo] + frac * self.log_gain[lo + 1]
        return np.exp(log_gain)


class NumpyTransforms:
    """A model's transforms on NumPy, float32, channels-last arrays throughout."""

    backend = "numpy"
    device = "cpu"

    def __init__(self, state: Mapping[str, np.ndarray], n: int, m: int):
        self.g_a = NumpyNetwork(architecture.analysis(n, m), state, "g_a")
        self.g_s = NumpyNetwork(architecture.synthesis(n, m), state, "g_s")
        self.h_a = NumpyNetwork(architecture.hyper_analysis(n, m), state, "h_a")
        self.gain_y, self.gain_y_inv, self.gain_z = (
            GainBank(state[f"{name}.log_gain"]) for name in ("gain_y", "gain_y_inv", "gain_z"))

    def analyse(self, x: np.ndarray) -> np.ndarray:
        return self.g_a(_f32(x))

    def latents(self, features: np.ndarray, level: float) -> np.ndarray:
        return features * self.gain_y(level)

    def hyper_analyse(self, y: np.ndarray, level: float) -> np.ndarray:
        return self.h_a(y) * self.gain_z(level)

    def as_array(self, y: np.ndarray) -> np.ndarray:
        return y.astype(np.float64)

    def synthesize(self, y_hat: np.ndarray, level: float) -> np.ndarray:
        return self.g_s(y_hat * self.gain_y_inv(level))
