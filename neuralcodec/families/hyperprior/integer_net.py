"""Integer networks for the entropy-parameter path (Ballé et al. 2019, "Integer networks
for data compression with latent-variable models").

The hyper-synthesis ``h_s``, the checkerboard context and the entropy-parameter network
decide every latent's table index and mean. Computed in floating point, tiny differences
between machines, libraries or thread counts can pick another table and derail the
decoder. Here they are computed *exactly*:

* activations are integers on a fixed-point grid of ``2**-FRAC_BITS``, clamped to
  ``±ACT_LIMIT``;
* each layer's weights are integers ``round(w * 2**shift)`` with ``|w_int| <= 2**WEIGHT_BITS``
  (one power-of-two scale per layer), biases ``round(b * 2**(shift + FRAC_BITS))``;
* a layer is a float64 convolution of integer-valued arrays (NumPy, no torch). Every
  product and partial sum is an integer below 2**53, so the result is exact in any
  summation order, whatever the BLAS or its threads; it is rescaled with an exact floor
  division by ``2**shift``;
* LeakyReLU is ``floor(x * 41 / 4096)`` for negative ``x`` (slope ≈ 0.01), also exact;
* the rate-level gains are integers interpolated with integer arithmetic.

The integer form is derived from the float weights by exact operations only (scaling by
powers of two, rounding, ``frexp``), except the gains, whose exponentials are computed
once at export and stored as integers in the weights file.

Arrays are channels-last, (h, w, C), as :mod:`~neuralcodec.families.numpy_layers` takes
them; a pass's positions are rows (P, C).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..base import RatePoint
from ..numpy_layers import Conv2d, ConvTranspose2d
from ..specs import Conv, Layer, LeakyReLU
from . import architecture
from .coding_tables import CodingTables

FRAC_BITS = 10  # activation grid: 1/1024
ACT_LIMIT = float(2**20)  # |activation| <= 1024.0 in real units
WEIGHT_BITS = 14
MAX_SHIFT = 30
GAIN_BITS = 12
LEAK_NUM, LEAK_SHIFT = 41, 12  # 41 / 4096 = 0.01001 ≈ LeakyReLU's 0.01

# Worst case of one output: ACT_LIMIT * 2**WEIGHT_BITS * (inputs per output) + bias must
# stay below 2**53 for float64 sums to be exact. The widest layer here has 192*25 inputs:
# 2**20 * 2**14 * 4800 < 2**47.
_EXACT_LIMIT = float(2**53)


def integer_leaky(out: np.ndarray) -> np.ndarray:
    """LeakyReLU of integers, exactly (in place): x for x >= 0, floor(x * 41 / 4096)
    below."""
    negative = np.minimum(out, 0)
    np.floor(np.multiply(negative, LEAK_NUM * 2.0**-LEAK_SHIFT, out=negative), out=negative)
    np.maximum(out, 0, out=out)
    out += negative
    return out


@dataclass
class IntegerLayer:
    weight: np.ndarray  # float64, integer-valued, torch's layout
    bias: np.ndarray  # float64, integer-valued, on the 2**-(shift + FRAC_BITS) grid
    shift: int
    transposed: bool
    stride: int
    padding: int
    output_padding: int
    leaky: bool
    _conv: Any = field(default=None, init=False, repr=False)

    def __call__(self, a: np.ndarray) -> np.ndarray:
        """The layer on an (h, w, C) array of integers."""
        if self._conv is None:
            self._conv = (ConvTranspose2d(self.weight, self.bias, self.stride, self.padding,
                                          self.output_padding) if self.transposed
                          else Conv2d(self.weight, self.bias, self.stride, self.padding))
        return self.finish(self._conv(a))

    def finish(self, acc: np.ndarray) -> np.ndarray:
        """Rescale, activate and clamp exact accumulator values (``acc`` is this layer's
        own array: done in place)."""
        out = np.floor(np.multiply(acc, 2.0 ** -self.shift, out=acc), out=acc)
        if self.leaky:
            out = integer_leaky(out)
        return np.clip(out, -ACT_LIMIT, ACT_LIMIT, out=out)

    def rows(self, a: np.ndarray) -> np.ndarray:
        """A 1x1 layer applied to (positions, channels) rows: one matrix product. Rows
        narrower than the layer's input stand for zeros in the channels after theirs
        (which add nothing to the exact sums, so they are not multiplied)."""
        weight = self.weight.reshape(self.weight.shape[0], -1)[:, :a.shape[1]]
        return self.finish(a @ weight.T + self.bias)


def weight_shift(weight: np.ndarray) -> int:
    """Power-of-two scale that maps a layer's weights to |w_int| <= 2**WEIGHT_BITS."""
    _, exponent = np.frexp(np.abs(np.asarray(weight, dtype=np.float64)).max())
    return min(MAX_SHIFT, WEIGHT_BITS - int(exponent))  # max|w| < 2**exponent


def quantize_layer(spec: Conv, weight: np.ndarray, bias: np.ndarray, leaky: bool,
                   shift: int | None = None) -> IntegerLayer:
    """Integer form of a layer described by ``spec`` with float ``weight`` and ``bias``;
    ``shift`` is the stored one for shipped weights."""
    w = np.asarray(weight, dtype=np.float64)
    if shift is None:
        shift = weight_shift(w)
    w_int = np.round(w * 2.0**shift)
    b_int = np.round(np.asarray(bias, dtype=np.float64) * 2.0 ** (shift + FRAC_BITS))
    fan_in = (w.shape[0] if spec.transposed else w.shape[1]) * w.shape[2] * w.shape[3]
    if ACT_LIMIT * 2**WEIGHT_BITS * fan_in + np.abs(b_int).max() >= _EXACT_LIMIT:
        raise ValueError("layer too wide for exact float64 integer arithmetic")
    return IntegerLayer(w_int, b_int, shift, spec.transposed, spec.stride, spec.padding,
                        spec.output_padding, leaky)


def integer_network(network: Iterable[Layer], weights: Mapping[str, np.ndarray], prefix: str,
                    shifts: Mapping[str, int] | None = None, single: bool = False
                    ) -> list[IntegerLayer]:
    """The integer layers of a described network (convolutions, each followed optionally
    by LeakyReLU) from its float weights by state-dict name (``single``: one layer stored
    under ``prefix`` itself)."""
    shifts = shifts or {}
    layers = list(network)
    out = []
    for i, spec in enumerate(layers):
        if isinstance(spec, LeakyReLU):
            continue
        if not isinstance(spec, Conv):
            raise TypeError(f"no integer form for {type(spec).__name__}")
        name = prefix if single else f"{prefix}.{i}"
        leaky = i + 1 < len(layers) and isinstance(layers[i + 1], LeakyReLU)
        out.append(quantize_layer(spec, weights[f"{name}.weight"], weights[f"{name}.bias"],
                                  leaky, shifts.get(name)))
    return out


# The sub-networks that decide the coding tables, by their names in the model.
PARAM_PATH = ("h_s", "context", "entropy_parameters")


def interpolate_gain(gains: np.ndarray, point: RatePoint) -> np.ndarray:
    """Integer gain at a rate point: linear between the trained levels (``gains``, one
    row per level), in integers; the float transforms' gains interpolate the same level
    (:meth:`~..base.RatePoint.level`) geometrically."""
    gains = np.asarray(gains, dtype=np.int64)
    lo, t = point.level_parts(gains.shape[0])
    g = ((point.denominator - t) * gains[lo] + t * gains[lo + 1]) // point.denominator
    return g.astype(np.float64)


class IntegerHyperPath:
    """The exact hyper-synthesis: integer z symbols in, hyper features out; and the table
    index of a predicted scale. What every integer parameter path of the family shares.

    All arrays crossing this interface are float64 holding *real* values that lie exactly
    on the 2**-FRAC_BITS grid (means, decoded latents), so callers can add and compare them
    without rounding.
    """

    def __init__(self, h_s: list[IntegerLayer], int_gain_z_inv: np.ndarray,
                 tables: CodingTables):
        self.h_s = h_s
        self.gain_z_inv = np.asarray(int_gain_z_inv, dtype=np.int64)
        self.z_medians = np.round(tables.z_medians * 2**FRAC_BITS)
        # Table i serves scales <= scale_table[i]: integer thresholds on the grid.
        self.thresholds = np.ceil(tables.scale_table * 2**FRAC_BITS)
        # Calibration: set to a dict to record each layer's largest |activation|.
        self.peaks: dict[str, float] | None = None

    def _run(self, layers: list[IntegerLayer], a: np.ndarray, name: str = "") -> np.ndarray:
        for i, layer in enumerate(layers):
            a = self._record(f"{name}[{i}]", layer(a))
        return a

    def hyper(self, z_symbols: np.ndarray, point: RatePoint) -> np.ndarray:
        """Hyper features (h, w, M) of z's symbols (h/4, w/4, N) at a rate point."""
        z = np.clip(z_symbols * 2**FRAC_BITS + self.z_medians, -ACT_LIMIT, ACT_LIMIT)
        g = interpolate_gain(self.gain_z_inv, point)
        z = np.clip(np.floor(z * g * 2.0**-GAIN_BITS), -ACT_LIMIT, ACT_LIMIT)
        return self._run(self.h_s, z, "h_s")

    def table_index(self, scales: np.ndarray) -> np.ndarray:
        """Table index (int64) of integer scales on the grid: the first table whose scale
        is at least the predicted one (the last if none is)."""
        idx = np.searchsorted(self.thresholds, scales, side="left")
        return np.minimum(idx, len(self.thresholds) - 1).astype(np.int64)

    def _record(self, key: str, a: np.ndarray) -> np.ndarray:
        if self.peaks is not None and a.size:
            self.peaks[key] = max(self.peaks.get(key, 0.0), float(np.abs(a).max()))
        return a


def checkerboard_anchors(height: int, width: int) -> np.ndarray:
    """Boolean (H, W) mask of the anchor positions, decoded first ((i + j) even)."""
    return (np.add.outer(np.arange(height), np.arange(width)) % 2) == 0


def anchor_context(layer: IntegerLayer, y_hat_anchor: np.ndarray, positions: np.ndarray,
                   tap_weights: dict[int, np.ndarray]) -> np.ndarray:
    """A (k x k, stride 1) context layer over the decoded anchors ``y_hat_anchor`` (h, w,
    C; real values on the grid), at the P ``positions`` (an (h, w) mask of one
    checkerboard colour), as (P, out channels) integer rows.

    Only the taps that fall on anchors are summed (12 of 25 for 5x5): other latents are
    zero when the context runs, so the sums, exact integers, are the full convolution's.
    ``tap_weights`` caches the gathered kernels per parity."""
    k = layer.weight.shape[-1]
    r = k // 2
    ii, jj = np.nonzero(positions)
    parity = int(ii[0] + jj[0]) % 2 if len(ii) else 0
    anchors = checkerboard_anchors(*positions.shape)[:, :, None]
    a = np.clip(y_hat_anchor * anchors * 2**FRAC_BITS, -ACT_LIMIT, ACT_LIMIT)
    a = np.pad(a, ((r, r), (r, r), (0, 0)))
    # Anchor taps of a position of this parity: offsets with di + dj of its parity.
    taps = [(di, dj) for di in range(-r, r + 1) for dj in range(-r, r + 1)
            if (di + dj) % 2 == parity]
    gathered = np.concatenate([a[ii + di + r, jj + dj + r] for di, dj in taps], 1)  # (P, .)
    weight = tap_weights.get(parity)
    if weight is None:
        w = layer.weight  # (out, in, k, k)
        weight = np.ascontiguousarray(
            np.concatenate([w[:, :, di + r, dj + r] for di, dj in taps], 1).T)
        tap_weights[parity] = weight
    return layer.finish(gathered @ weight + layer.bias)


class IntegerParamPath(IntegerHyperPath):
    """The exact entropy-parameter path: integer z symbols in, table indices and means out
    (the hyper-synthesis, the checkerboard context and the entropy-parameter network)."""

    def __init__(self, h_s: list[IntegerLayer], context: IntegerLayer,
                 entropy_parameters: list[IntegerLayer], int_gain_z_inv: np.ndarray,
                 tables: CodingTables):
        super().__init__(h_s, int_gain_z_inv, tables)
        self.context = context
        self.entropy_parameters = entropy_parameters
        self._tap_weights: dict[int, np.ndarray] = {}

    @classmethod
    def from_weights(cls, weights: Mapping[str, np.ndarray], shifts: Mapping[str, int],
                     int_gain_z_inv: np.ndarray, tables: CodingTables, N: int, M: int
                     ) -> IntegerParamPath:
        """The path of a model's float weights (arrays by state-dict name)."""
        (context,) = integer_network((architecture.context(M),), weights, "context", shifts,
                                     single=True)
        return cls(
            integer_network(architecture.hyper_synthesis(N, M), weights, "h_s", shifts),
            context,
            integer_network(architecture.entropy_parameters(M), weights,
                            "entropy_parameters", shifts),
            int_gain_z_inv, tables)

    def params(self, hyper: np.ndarray, y_hat_anchor: np.ndarray | None,
               positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(table index as int64, mean as real float64), each (P, channels), at the P
        ``positions`` (an (h, w) mask of one checkerboard colour, raster order); the
        context comes from the decoded anchors ``y_hat_anchor`` (None: no context).

        Only those positions are computed, and the 5x5 context only over the taps that
        fall on anchors (see :func:`anchor_context`)."""
        a = hyper[positions]  # (P, channels)
        if y_hat_anchor is not None:  # else the context is zeros: rows() leaves them out
            ctx = self._record("context[0]", anchor_context(
                self.context, y_hat_anchor, positions, self._tap_weights))
            a = np.concatenate([a, ctx], 1)
        for i, layer in enumerate(self.entropy_parameters):
            a = self._record(f"entropy_parameters[{i}]", layer.rows(a))
        scales, means = np.split(a, 2, axis=1)
        return self.table_index(scales), means * 2.0**-FRAC_BITS
