"""The networks' parameters in a file: integers on a power-of-two step per group, range-
coded with the zero-mean Laplace tables, one scale bucket per tensor (the one that codes
it in the fewest bits). No torch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...entropy import CDF_PRECISION, SymbolDecoder, SymbolEncoder, pack_varints
from ...errors import CorruptFileError
from .laplace_tables import MEAN_STEPS, SCALE_BUCKETS, laplace_tables

MAX_STEP_BITS = 24  # steps 2**0 .. 2**-24


def quantize(values: np.ndarray, bits: int) -> np.ndarray:
    """``values`` as integers on the step ``2**-bits`` (round half to even)."""
    return np.round(np.asarray(values, dtype=np.float64) * 2.0**bits).astype(np.int64)


def dequantize(q: np.ndarray, bits: int) -> np.ndarray:
    return np.asarray(q, dtype=np.float64) * 2.0**-bits


def _bits_per_table(values: np.ndarray) -> np.ndarray:
    """Coded size in bits of ``values`` under each zero-mean table (escapes included)."""
    tables = laplace_tables()
    out = np.empty(SCALE_BUCKETS)
    for k in range(SCALE_BUCKETS):
        t = k * MEAN_STEPS
        length, offset = int(tables.lengths[t]), int(tables.offsets[t])
        freqs = np.diff(tables.cdfs[t, :length])
        v = values - offset
        esc = length - 2
        inside = (v >= 0) & (v < esc)
        bits = CDF_PRECISION * v.size - np.log2(freqs[np.where(inside, v, esc)]).sum()
        out[k] = bits + 8 * len(pack_varints(values[~inside].tolist()))
    return out


def best_bucket(values: np.ndarray) -> tuple[int, float]:
    """The scale bucket that codes ``values`` in the fewest bits, and those bits."""
    bits = _bits_per_table(np.asarray(values, dtype=np.int64).ravel())
    k = int(np.argmin(bits))
    return k, float(bits[k])


def encode_parameters(arrays: Sequence[np.ndarray]) -> tuple[bytes, bytes, list[int]]:
    """(range-coded stream, per-tensor scale buckets as bytes, escapes) of integer arrays."""
    encoder = SymbolEncoder()
    buckets = []
    for a in arrays:
        values = np.asarray(a, dtype=np.int64).ravel()
        k, _ = best_bucket(values)
        buckets.append(k)
        encoder.encode(values, np.full(values.size, k * MEAN_STEPS), laplace_tables())
    stream, escapes = encoder.finish()
    return stream, bytes(buckets), escapes


def decode_parameters(stream: bytes, buckets: bytes, escapes, shapes: Sequence[tuple[int, ...]]
                      ) -> list[np.ndarray]:
    if len(buckets) != len(shapes) or any(k >= SCALE_BUCKETS for k in buckets):
        raise CorruptFileError("parameter tables are damaged")
    decoder = SymbolDecoder(stream, escapes)
    out = []
    for k, shape in zip(buckets, shapes, strict=True):
        n = int(np.prod(shape))
        out.append(decoder.decode(np.full(n, k * MEAN_STEPS), laplace_tables()).reshape(shape))
    return out
