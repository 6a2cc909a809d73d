"""Fixed integer tables for the residual's symbols, selected by index (as the latents').

A symbol's distribution is a logistic of mean ``μ`` and scale ``s`` (both in units of the
quantization step) discretized to the integers. The coder never sees ``μ`` and ``s``
themselves: ``μ`` splits into an integer part, subtracted from the symbol, and one of
``MEAN_PHASES`` fractional phases; ``s`` is rounded to the nearest of ``SCALES`` (in the
log domain). Table ``scale_index · MEAN_PHASES + phase`` holds the distribution for that
scale centred at the phase's midpoint, with an escape for values beyond its range.
"""

from __future__ import annotations

import numpy as np

from ..entropy import TableSet, quantized_cdf

MEAN_PHASES = 4
SCALES = np.exp(np.linspace(np.log(0.06), np.log(64.0), 64))
TAIL = 14  # a table reaches TAIL scales each side (the logistic's tail there is ~1e-6)
MAX_HALF_WIDTH = 600


def logistic_cdf(v: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * v))


def bin_probability(symbol: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """P(symbol) under the discretized logistic (mean, scale in steps)."""
    upper = logistic_cdf((symbol + 0.5 - mean) / scale)
    lower = logistic_cdf((symbol - 0.5 - mean) / scale)
    return np.maximum(upper - lower, 1e-12)


def build_tables() -> TableSet:
    """The table set: len(SCALES) · MEAN_PHASES integer CDFs."""
    rows, offsets = [], []
    for s in SCALES:
        half = int(min(MAX_HALF_WIDTH, np.ceil(TAIL * s) + 1))
        values = np.arange(-half, half + 1, dtype=np.float64)
        for phase in range(MEAN_PHASES):
            centre = (phase + 0.5) / MEAN_PHASES
            rows.append(quantized_cdf(bin_probability(values, centre, s)))
            offsets.append(-half)
    return TableSet.from_rows(rows, offsets)


def table_indices(mean: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(integer part of the mean, table index) for means and scales in steps."""
    base = np.floor(mean)
    phase = np.minimum(((mean - base) * MEAN_PHASES).astype(np.int64), MEAN_PHASES - 1)
    log_scales = np.log(SCALES)
    k = np.searchsorted((log_scales[1:] + log_scales[:-1]) / 2, np.log(np.maximum(scale, 1e-9)))
    return base.astype(np.int64), k * MEAN_PHASES + phase
