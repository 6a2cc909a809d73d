"""The residual's probability model in exact integer arithmetic: identical table indices
on every machine, thread count, BLAS and NumPy version (as the latents' parameter path,
:mod:`~neuralcodec.families.hyperprior.integer_net`).

* **Inputs** are the integer columns of :class:`~.context.IntegerFeatures` (the float
  model's fixed column scales are folded into the first layer) and two globals, the
  stored quality (hundredths) and the step, folded into the first layer's bias once per
  pass.
* **Weights** are integers ``round(w * 2**shift)`` with one power-of-two scale per output
  column, ``|w_int| <= 2**WEIGHT_BITS``; each layer's accumulator is rescaled to the
  activation grid ``2**-FRAC_BITS`` by ``floor(acc * 2**-shift)``.
* **Accumulation** is a float64 matrix product of integers. It is exact in any summation
  order while every partial sum is below 2**53: :meth:`ExactPassNet.check_bounds` proves
  it from the weights and each input's largest magnitude (the decoder refuses symbols
  beyond the largest residual, so damaged files cannot break it) when a model is built.
* **Activations**: LeakyReLU as ``floor(41 x / 4096)`` below 0, clamped to ``±ACT_LIMIT``.
* **Outputs**: the mean (in units of ``MEAN_UNIT`` levels) and the log scale (natural,
  in levels), on the grid. The mean's integer part and phase come from integer floor
  divisions; the scale's table from integer thresholds stored with the model (one row
  per K). No ``exp`` or ``log`` on the decode path.

Layer 0 of each pass's network holds, after its hidden columns, the two columns of the
linear path from the inputs to the outputs (no activation), added to the last layer's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..families.hyperprior.integer_net import (
    ACT_LIMIT,
    FRAC_BITS,
    WEIGHT_BITS,
    integer_leaky,
)
from .context import MAX_ERROR_LIMIT, Pass
from .model import MEAN_UNIT, PassNet
from .tables import MEAN_PHASES, SCALES

_EXACT_LIMIT = float(2**53)
MAX_SHIFT = 40


class BoundError(ValueError):
    """Weights whose accumulators could reach 2**53 (float64 sums no longer exact)."""


@dataclass
class ExactLayer:
    weight: np.ndarray  # (inputs, outputs) float64 holding integers
    bias: np.ndarray  # (outputs,) float64 integers on the accumulator's grid
    shift: np.ndarray  # (outputs,) int: accumulator * 2**-shift is on the activation grid
    leaky: np.ndarray  # (outputs,) bool: LeakyReLU on that output

    def __post_init__(self) -> None:
        self.scale = np.ldexp(1.0, -self.shift.astype(np.int64))

    def finish(self, acc: np.ndarray) -> np.ndarray:
        """Rescale, activate and clamp exact accumulator values (in place)."""
        out = np.floor(np.multiply(acc, self.scale, out=acc), out=acc)
        if self.leaky.any():
            out[:, self.leaky] = integer_leaky(out[:, self.leaky])
        return np.clip(out, -ACT_LIMIT, ACT_LIMIT, out=out)

    def worst(self, input_bounds: np.ndarray) -> float:
        """The largest |partial sum| any input within ``input_bounds`` can give."""
        return float((input_bounds @ np.abs(self.weight) + np.abs(self.bias)).max())


@dataclass
class ExactPassNet:
    """One pass's integer network: layer 0 (inputs and globals, its last two columns the
    linear path), then hidden layers; the output is (mean, log scale) on the grid."""

    layers: list[ExactLayer]

    def check_bounds(self, input_bounds: np.ndarray, name: str) -> dict[str, float]:
        """log2 of each layer's worst partial sum; raises :class:`BoundError` where one
        reaches 2**53. ``input_bounds``: each input's (and global's) largest magnitude."""
        out = {}
        bounds = np.asarray(input_bounds, dtype=np.float64)
        for i, layer in enumerate(self.layers):
            if layer.weight.shape[0] != len(bounds):
                raise BoundError(f"{name}: layer {i} takes {layer.weight.shape[0]} inputs, "
                                 f"not {len(bounds)}")
            worst = layer.worst(bounds)
            if not worst < _EXACT_LIMIT:
                raise BoundError(f"{name}: layer {i}'s sums could reach 2**{np.log2(worst):.1f}"
                                 " (exact float64 needs them below 2**53)")
            out[f"{name}.{i}"] = float(np.log2(max(worst, 1.0)))
            hidden = layer.weight.shape[1] - (2 if i == 0 else 0)
            bounds = np.full(hidden, ACT_LIMIT)
        return out

    def bias_with_globals(self, globals_: tuple[int, int]) -> np.ndarray:
        """Layer 0's bias with the globals' products folded in (exact integers)."""
        first = self.layers[0]
        return first.bias + np.asarray(globals_, np.float64) @ first.weight[-2:]

    def __call__(self, columns: np.ndarray, bias0: np.ndarray) -> np.ndarray:
        """(positions, 2) float64 integers on the grid: mean / MEAN_UNIT and log scale."""
        first = self.layers[0]
        acc = columns.astype(np.float64) @ first.weight[:-2]
        acc += bias0
        h = first.finish(acc)
        skip = h[:, -2:]
        h = h[:, :-2]
        for layer in self.layers[1:]:
            acc = h @ layer.weight
            acc += layer.bias
            h = layer.finish(acc)
        return h + skip


def scale_thresholds() -> np.ndarray:
    """(K + 1, len(SCALES) - 1) int64: for each K, the log scales (in levels, on the grid)
    from which the table of the next scale serves: the midpoints of ``log(SCALES)`` in
    steps, plus ``log(2K + 1)``. Computed once at export and stored with the model."""
    log_scales = np.log(SCALES)
    mids = (log_scales[1:] + log_scales[:-1]) / 2
    steps = 2 * np.arange(MAX_ERROR_LIMIT + 1) + 1
    return (np.floor((mids[None] + np.log(steps)[:, None]) * 2**FRAC_BITS) + 1).astype(
        np.int64)


def table_choice(out: np.ndarray, delta: int, thresholds: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(the mean's integer part in steps, table index), int64, from a network's integer
    outputs for step ``delta`` (``thresholds``: the K's row of :func:`scale_thresholds`).
    The mean is ``floor``-divided in integers; the phase is the fractional part's quarter;
    the scale's table is the count of thresholds at or below the log scale."""
    mean = out[:, 0].astype(np.int64) * int(MEAN_UNIT)  # levels on 2**-FRAC_BITS
    unit = delta << FRAC_BITS
    base = mean // unit
    phase = ((mean - base * unit) * MEAN_PHASES) // unit
    k = np.searchsorted(thresholds, out[:, 1].astype(np.int64), side="right")
    return base, k * MEAN_PHASES + phase


def _column_shifts(w: np.ndarray) -> np.ndarray:
    """Per output column: the power of two mapping it to |w_int| <= 2**WEIGHT_BITS."""
    peak = np.abs(w).max(axis=0)
    _, exponent = np.frexp(np.where(peak > 0, peak, 1.0))
    return np.minimum(MAX_SHIFT, WEIGHT_BITS - exponent).astype(np.int64)


def _integer_layer(w: np.ndarray, b: np.ndarray, input_frac: int, leaky: np.ndarray
                   ) -> ExactLayer:
    """An integer layer of float ``w`` (inputs, outputs) and ``b`` whose inputs lie on the
    grid ``2**-input_frac``; its outputs land on ``2**-FRAC_BITS``."""
    s = _column_shifts(w)
    w_int = np.round(w * np.ldexp(1.0, s)[None])
    b_int = np.round(b * np.ldexp(1.0, s + input_frac))
    return ExactLayer(w_int, b_int, s + input_frac - FRAC_BITS, leaky)


def quantize_net(net: PassNet, scales: np.ndarray) -> ExactPassNet:
    """The integer form of a float pass network whose inputs are integer columns times
    ``scales`` (the globals' last): the scales folded into layer 0 with the linear path."""
    if net.skip is None or len(net.weights) < 2:
        raise ValueError("the exact form needs hidden layers and the linear path")
    scales = np.asarray(scales, np.float64)[:, None]
    w0 = np.concatenate([net.weights[0], net.skip[0]], axis=1).astype(np.float64) * scales
    b0 = np.concatenate([net.biases[0], net.skip[1]]).astype(np.float64)
    hidden = net.weights[0].shape[1]
    leaky0 = np.arange(hidden + 2) < hidden
    layers = [_integer_layer(w0, b0, 0, leaky0)]
    last = len(net.weights) - 1
    for i in range(1, last + 1):
        w = net.weights[i].astype(np.float64)
        layers.append(_integer_layer(w, net.biases[i].astype(np.float64), FRAC_BITS,
                                     np.full(w.shape[1], i < last)))
    return ExactPassNet(layers)


def net_arrays(key: str, net: ExactPassNet) -> dict[str, np.ndarray]:
    """A pass network's stored arrays: int32 weights, int64 biases and shifts."""
    out = {}
    for i, layer in enumerate(net.layers):
        out[f"{key}.{i}.weight"] = layer.weight.astype(np.int32)
        out[f"{key}.{i}.bias"] = layer.bias.astype(np.int64)
        out[f"{key}.{i}.shift"] = layer.shift.astype(np.int64)
    return out


def net_from_arrays(key: str, arrays: Mapping[str, np.ndarray]) -> ExactPassNet:
    """The network stored under ``key`` (as :func:`net_arrays` writes it)."""
    layers = []
    count = len({k.split(".")[2] for k in arrays if k.startswith(key + ".")})
    for i in range(count):
        w = np.asarray(arrays[f"{key}.{i}.weight"])
        if not np.issubdtype(w.dtype, np.integer):
            raise ValueError(f"{key}.{i}.weight is not integer")
        leaky = np.full(w.shape[1], i < count - 1)
        if i == 0:
            leaky[-2:] = False
        layers.append(ExactLayer(w.astype(np.float64),
                                 np.asarray(arrays[f"{key}.{i}.bias"]).astype(np.float64),
                                 np.asarray(arrays[f"{key}.{i}.shift"]).astype(np.int64),
                                 leaky))
    return ExactPassNet(layers)


def pass_key(p: Pass) -> str:
    return f"c{p.channel}.p{p.phase}"
