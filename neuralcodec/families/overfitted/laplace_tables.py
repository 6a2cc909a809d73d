"""Fixed integer CDF tables of discretised Laplace distributions, and the exact integer map
from the ARM's fixed-point outputs (mean, log-scale) to a table and a coded symbol.

Table ``t = k * MEAN_STEPS + f`` is a Laplace of scale ``b_k`` centred at ``f /
MEAN_STEPS`` over integer symbols; a latent ``y`` with fixed-point mean ``mu`` is coded
as ``y - floor(mu_q)`` where ``mu_q`` is ``mu`` rounded to the nearest ``1/MEAN_STEPS``
and ``f`` its fraction. Everything after the tables is integer arithmetic.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

import numpy as np

from ...entropy import CDF_PRECISION, TableSet

FRAC_BITS = 8  # the ARM's activation grid: 2**-8 (its outputs share it)
MEAN_STEP_BITS = 5  # means are rounded to 1/32: 1/8 cost up to 17 % more bits at low
MEAN_STEPS = 2**MEAN_STEP_BITS  # rates, where small scales make the mean's place matter
LOG_SCALE_STEP_BITS = 3  # log-scale buckets of 1/8 (natural log)
LOG_SCALE_MIN, LOG_SCALE_MAX = -4.5, 4.0  # b from 0.011 to 55
SCALE_BUCKETS = int((LOG_SCALE_MAX - LOG_SCALE_MIN) * 2**LOG_SCALE_STEP_BITS)  # 68
TAIL_SCALES = 12  # a table covers its centre +- ceil(TAIL_SCALES * b) + 2 (+ escape)
MAX_HALF_WIDTH = 512


def bucket_scales() -> np.ndarray:
    """The scale each bucket's tables use: the geometric middle of the bucket."""
    k = np.arange(SCALE_BUCKETS, dtype=np.float64)
    return np.exp(LOG_SCALE_MIN + (k + 0.5) * 2.0**-LOG_SCALE_STEP_BITS)


def _quantized_cdf(pmf: np.ndarray) -> np.ndarray:
    """A 16-bit CDF of ``pmf`` (the last entry: the escape's mass) in which every symbol
    has a frequency of at least 1; the rounding error goes to the largest bin."""
    total = 1 << CDF_PRECISION
    freqs = np.maximum(1, np.round(pmf / pmf.sum() * (total - len(pmf)))).astype(np.int64)
    freqs[np.argmax(freqs)] += total - freqs.sum()
    return np.concatenate([[0], np.cumsum(freqs)])


def _laplace_cdf(x: np.ndarray, b: float) -> np.ndarray:
    # Each side in the form that keeps the far tail's small masses accurate.
    return np.where(x < 0, 0.5 * np.exp(np.minimum(x, 0) / b),
                    1 - 0.5 * np.exp(-np.maximum(x, 0) / b))


_stored: list[TableSet] = []  # the model's stored tables, once a coder installed them


def install_tables(tables: TableSet) -> None:
    """Code with ``tables`` (read from the model's weights file) from now on: a decoder
    then never recomputes them with its own ``exp``. They must equal the formula's."""
    _stored[:] = [tables]


def laplace_tables() -> TableSet:
    """The tables every coder uses: the stored ones where installed, else the formula's."""
    return _stored[0] if _stored else computed_tables()


@lru_cache(maxsize=1)
def computed_tables() -> TableSet:
    """All SCALE_BUCKETS * MEAN_STEPS tables from the formula, in :class:`TableSet`'s
    layout (what the model's weights file stores)."""
    rows, offsets = [], []
    for b in bucket_scales():
        half = min(MAX_HALF_WIDTH, int(np.ceil(TAIL_SCALES * b)) + 2)
        symbols = np.arange(-half, half + 1, dtype=np.float64)
        for f in range(MEAN_STEPS):
            d = symbols - f / MEAN_STEPS
            mass = _laplace_cdf(d + 0.5, b) - _laplace_cdf(d - 0.5, b)
            escape = max(0.0, 1.0 - mass.sum())
            rows.append(_quantized_cdf(np.append(mass, escape)))  # symbols + escape + 1
            offsets.append(-half)
    return TableSet.from_rows(rows, offsets)


def tables_digest(t: TableSet | None = None) -> str:
    """SHA-256 of tables (default: the formula's), pinned by a test: a platform whose
    ``exp`` rounds otherwise would show here before it decodes a file wrongly."""
    t = computed_tables() if t is None else t
    h = hashlib.sha256()
    for a in (t.cdfs, t.lengths, t.offsets):
        h.update(np.ascontiguousarray(a, dtype="<i8").tobytes())
    return h.hexdigest()


def pack_tables(t: TableSet) -> dict[str, np.ndarray]:
    """The tables as the weights file stores them: every table's symbol frequencies (each
    1..2**16 - 1) concatenated as uint16, and the tables' lengths and offsets (int32)."""
    freqs = [np.diff(t.cdfs[i, :t.lengths[i]]) for i in range(len(t))]
    return {"laplace.freqs": np.concatenate(freqs).astype(np.uint16),
            "laplace.lengths": t.lengths.astype(np.int32),
            "laplace.offsets": t.offsets.astype(np.int32)}


def unpack_tables(stored: dict[str, np.ndarray]) -> TableSet:
    """:func:`pack_tables`'s arrays back as tables; ValueError if they are not valid."""
    lengths = stored["laplace.lengths"].astype(np.int64)
    freqs = stored["laplace.freqs"].astype(np.int64)
    if lengths.shape != (SCALE_BUCKETS * MEAN_STEPS,) or freqs.size != int((lengths - 1).sum()):
        raise ValueError("Laplace tables have the wrong shape")
    bounds = np.concatenate([[0], np.cumsum(lengths - 1)])
    rows = [np.concatenate([[0], np.cumsum(freqs[a:b])])
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    if any(r[-1] != 1 << CDF_PRECISION or (np.diff(r) <= 0).any() for r in rows):
        raise ValueError("Laplace tables are not valid CDFs")
    return TableSet.from_rows(rows, stored["laplace.offsets"].astype(np.int64).tolist())


def floor(x: Any) -> Any:
    """Elementwise floor of a NumPy array or a torch tensor."""
    return np.floor(x) if isinstance(x, np.ndarray) else x.floor()


def clip(x: Any, low: float, high: float) -> Any:
    """``x`` clipped to [low, high]: in place for NumPy arrays (``ndarray.clip`` costs
    several times more on the decoder's small arrays), a new tensor for torch."""
    if isinstance(x, np.ndarray):
        return np.minimum(np.maximum(x, low, out=x), high, out=x)
    return x.clamp(low, high)


def table_and_base(mu_fp: Any, log_scale_fp: Any) -> tuple[Any, Any]:
    """Integer map of the ARM's outputs (integer-valued float64 on the 2**-FRAC_BITS grid,
    NumPy arrays or torch tensors) to table indices and the base each latent is coded from
    (``symbol = y - base``). Exact: floors of products by powers of two."""
    mean_shift = FRAC_BITS - MEAN_STEP_BITS
    # mu rounded to the nearest step, in steps: floor((mu_fp + half) / 2**mean_shift).
    mu_steps = floor((mu_fp + 2 ** (mean_shift - 1)) * 2.0**-mean_shift)
    base = floor(mu_steps * (1 / MEAN_STEPS))
    f = mu_steps - base * MEAN_STEPS
    k = floor((log_scale_fp - int(LOG_SCALE_MIN * 2**FRAC_BITS))
              * 2.0 ** -(FRAC_BITS - LOG_SCALE_STEP_BITS))
    k = clip(k, 0, SCALE_BUCKETS - 1)
    return k * MEAN_STEPS + f, base
