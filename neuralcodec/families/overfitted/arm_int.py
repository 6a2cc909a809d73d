"""The ARM in exact fixed point: the same arithmetic on NumPy arrays and torch tensors.

Every parameter arrives as an integer ``q`` with a power-of-two step ``2**-s`` (that is
how the file sends it, :mod:`.parameters`). Activations are integers on the
``2**-FRAC_BITS`` grid. A layer is a float64 matrix product of integer-valued arrays:
every product and partial sum is an integer far below 2**53 (bounds below), so it is
exact in any summation order, with any BLAS, thread count or device; then an exact floor
division by ``2**s_w`` brings it back to the activation grid. Residual, ReLU and clamp
are exact too, and :func:`~.laplace_tables.table_and_base` maps the outputs to tables
with integer divisions, so encoder and decoder choose the same table for every latent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .laplace_tables import FRAC_BITS, clip, floor, table_and_base

CONTEXT_LIMIT = 2**15  # |context latent| is clamped to this before the ARM
ACT_LIMIT = 2**24  # |activation| in grid units (2**16 in real units)
MAX_WEIGHT = 2**20  # |q| of a weight; 2**24 * 2**20 * 64 inputs < 2**53
MAX_STEP_BITS = 16


@dataclass(frozen=True)
class IntLinear:
    weight: np.ndarray  # float64, integer-valued, (inputs, outputs): rows @ weight
    bias: np.ndarray  # float64, integer-valued, on the accumulator grid 2**-(FRAC+s_w)
    weight_bits: int  # s_w: a weight is q * 2**-s_w
    residual: bool  # out = relu(layer(x) + x); the last layer has neither

    @classmethod
    def from_quantized(cls, weight_q: np.ndarray, weight_bits: int, bias_q: np.ndarray,
                       bias_bits: int, residual: bool) -> IntLinear:
        """``weight_q`` in torch's (outputs, inputs) layout, values ``q * 2**-bits``."""
        w = np.asarray(weight_q, dtype=np.float64)
        if np.abs(w).max(initial=0) > MAX_WEIGHT or w.shape[1] > 64:
            raise ValueError("ARM layer beyond the exact fixed-point bounds")
        if not (0 <= weight_bits <= MAX_STEP_BITS and 0 <= bias_bits <= MAX_STEP_BITS):
            raise ValueError("ARM quantization step out of range")
        # The bias on the accumulator grid, floored where it is finer (exact: a power of
        # two scaling of integers, then floor).
        bias = np.floor(np.asarray(bias_q, dtype=np.float64)
                        * 2.0 ** (FRAC_BITS + weight_bits - bias_bits))
        if np.abs(bias).max(initial=0) >= 2**51:
            raise ValueError("ARM bias beyond the exact fixed-point bounds")
        return cls(np.ascontiguousarray(w.T), bias, weight_bits, residual)


def arm_fixed_point(context: Any, layers: list[IntLinear], as_array=np.asarray
                    ) -> tuple[Any, Any]:
    """(mean, log-scale) on the ``2**-FRAC_BITS`` grid for rows of integer context
    latents (positions, context): float64 NumPy arrays, or torch float64 tensors with
    ``as_array`` turning the stored NumPy weights into tensors on their device."""
    x = clip(context * float(2**FRAC_BITS), -CONTEXT_LIMIT * 2.0**FRAC_BITS,
             CONTEXT_LIMIT * 2.0**FRAC_BITS)
    for layer in layers:
        acc = x @ as_array(layer.weight) + as_array(layer.bias)
        # floor(acc / 2**s): the product by a power of two is exact, and NumPy's floor is
        # many times faster than its floor division of floats.
        y = floor(acc * 2.0**-layer.weight_bits)
        if layer.residual:
            y = clip(y + x, 0, ACT_LIMIT)  # ReLU
        x = clip(y, -ACT_LIMIT, ACT_LIMIT)
    return x[:, 0], x[:, 1]


def arm_tables(context: Any, layers: list[IntLinear], as_array=np.asarray
               ) -> tuple[Any, Any]:
    """Table index and base (``symbol = latent - base``) of each context row."""
    return table_and_base(*arm_fixed_point(context, layers, as_array))


def integer_arm(parameters: Mapping[str, tuple[np.ndarray, int]], hidden: int
                ) -> list[IntLinear]:
    """The integer layers from the quantized parameters ``arm.{i}.weight``/``.bias`` (as
    (integers, step bits)); the ``hidden`` first layers are residual."""
    return [IntLinear.from_quantized(*parameters[f"arm.{i}.weight"],
                                     *parameters[f"arm.{i}.bias"], residual=i < hidden)
            for i in range(hidden + 1)]
