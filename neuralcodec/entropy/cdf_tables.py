"""Fixed integer frequency tables, the only thing the range coder knows of a model."""

from __future__ import annotations

import constriction
import numpy as np

CDF_PRECISION = 16  # CompressAI's quantized CDFs sum to 2**16


class TableSet:
    """Integer CDF tables: row ``t`` covers values ``offset[t] .. offset[t]+len-3`` plus
    one escape symbol. Layout as CompressAI's ``_quantized_cdf``/``_cdf_length``/``_offset``."""

    def __init__(self, cdfs: np.ndarray, lengths: np.ndarray, offsets: np.ndarray):
        self.cdfs = np.asarray(cdfs, dtype=np.int64)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        if not (len(self.cdfs) == len(self.lengths) == len(self.offsets)):
            raise ValueError("table arrays disagree in length")
        self._models: dict[int, object] = {}
        self._rows: dict[int, np.ndarray] = {}

    @classmethod
    def from_rows(cls, cdfs: list[np.ndarray], offsets: list[int]) -> TableSet:
        """Tables from one CDF array per table (``len(cdf)`` entries: its symbols, the
        escape and the leading 0) and each table's first value, packed into one array."""
        cdf_array = np.zeros((len(cdfs), max(len(c) for c in cdfs)), dtype=np.int64)
        for i, cdf in enumerate(cdfs):
            cdf_array[i, :len(cdf)] = cdf
        return cls(cdf_array, np.array([len(c) for c in cdfs]), np.array(offsets))

    def __len__(self) -> int:
        return len(self.lengths)

    def escape_symbol(self, t: int) -> int:
        return int(self.lengths[t]) - 2

    def model(self, t: int):
        """constriction model for table ``t``: dyadic probabilities, so exact in float64."""
        m = self._models.get(t)
        if m is None:
            cdf = self.cdfs[t, : self.lengths[t]]
            freqs = np.diff(cdf).astype(np.float64)
            if np.any(freqs <= 0):
                raise ValueError(f"table {t} has an empty bin")
            probabilities = freqs / float(1 << CDF_PRECISION)
            m = constriction.stream.model.Categorical(probabilities, perfect=False)
            self._models[t] = m
        return m

    def rows(self, width: int) -> np.ndarray:
        """Every table's probabilities as a row of ``width`` entries, zeros after its own
        (tables of more than ``width`` symbols are left as zeros): the per-symbol form of
        constriction's batched categorical model. Dyadic, so exact in float64."""
        r = self._rows.get(width)
        if r is None:
            r = np.zeros((len(self), width))
            for t in range(len(self)):
                n = int(self.lengths[t]) - 1  # symbols, the escape included
                if n <= width:
                    r[t, :n] = np.diff(self.cdfs[t, :n + 1]) / float(1 << CDF_PRECISION)
            self._rows[width] = r
        return r


def quantized_cdf(pmf: np.ndarray, precision: int = CDF_PRECISION) -> np.ndarray:
    """Integer CDF (len K+2) over K symbols plus an escape symbol (the last, frequency 1),
    every bin >= 1 and the total exactly 2**precision. Deterministic NumPy integer
    arithmetic after one rounding."""
    total = 1 << precision
    k = len(pmf)
    pmf = np.asarray(pmf, dtype=np.float64)
    pmf = pmf / pmf.sum()
    freqs = np.maximum(1, np.floor(pmf * (total - k - 1)).astype(np.int64))
    freqs = np.append(freqs, 1)
    freqs[int(np.argmax(freqs[:-1]))] += total - int(freqs.sum())
    if freqs.min() < 1:
        raise ValueError("pmf too peaked for the table precision")
    return np.concatenate([[0], np.cumsum(freqs)]).astype(np.int32)
