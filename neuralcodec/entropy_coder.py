"""Entropy coding of integer symbols with constriction's range coder.

The coder knows nothing about models: it receives integer symbols, an integer *table
index* per symbol, and a :class:`TableSet` of fixed integer frequency tables (16-bit
CDFs shipped inside the weights file). Encoder and decoder therefore use identical
probabilities by construction. Symbols outside a table's range are coded as the table's
last ("escape") entry and their values are stored, in coding order, in a separate
escape stream of zig-zag varints, so any integer codes losslessly.
"""

from __future__ import annotations

from collections.abc import Iterator

import constriction
import numpy as np

from .errors import CorruptFileError

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


def _zigzag(values: np.ndarray) -> np.ndarray:
    v = values.astype(np.int64)
    return ((v << 1) ^ (v >> 63)).astype(np.uint64)


def pack_varints(values: list[int]) -> bytes:
    """Zig-zag LEB128: small magnitudes of either sign take one byte."""
    out = bytearray()
    for u in _zigzag(np.asarray(values, dtype=np.int64)).tolist():
        while u >= 0x80:
            out.append((u & 0x7F) | 0x80)
            u >>= 7
        out.append(u)
    return bytes(out)


def unpack_varints(data: bytes) -> Iterator[int]:
    u, shift = 0, 0
    for byte in data:
        u |= (byte & 0x7F) << shift
        shift += 7
        if shift > 63:
            raise CorruptFileError("escape stream holds an oversized value")
        if not byte & 0x80:
            yield (u >> 1) ^ -(u & 1)
            u, shift = 0, 0
    if shift:
        raise CorruptFileError("escape stream is truncated")


class SymbolEncoder:
    """Appends groups of symbols to one range-coded stream plus the escape list."""

    def __init__(self) -> None:
        self._coder = constriction.stream.queue.RangeEncoder()
        self.escapes: list[int] = []

    def encode(self, symbols: np.ndarray, table_idx: np.ndarray, tables: TableSet) -> None:
        """Code ``symbols`` (ints) in the order: table 0's members, table 1's, ...
        Within a table, members keep their order in the flattened arrays."""
        symbols = np.asarray(symbols, dtype=np.int64).ravel()
        table_idx = np.asarray(table_idx, dtype=np.int64).ravel()
        for t in np.unique(table_idx).tolist():
            values = symbols[table_idx == t] - tables.offsets[t]
            esc = tables.escape_symbol(t)
            over = (values < 0) | (values >= esc)
            if over.any():
                self.escapes.extend((values[over] + tables.offsets[t]).tolist())
                values = np.where(over, esc, values)
            self._coder.encode(values.astype(np.int32), tables.model(t))

    def finish(self) -> tuple[bytes, list[int]]:
        words = self._coder.get_compressed()
        return words.astype("<u4").tobytes(), self.escapes


class SymbolDecoder:
    """Reads groups of symbols back in the order :class:`SymbolEncoder` wrote them."""

    def __init__(self, stream: bytes, escapes: Iterator[int]):
        if len(stream) % 4:
            raise CorruptFileError("range-coded stream length is not a multiple of 4")
        words = np.frombuffer(stream, dtype="<u4").astype(np.uint32)
        self._coder = constriction.stream.queue.RangeDecoder(words)
        self._escapes = escapes

    def decode(self, table_idx: np.ndarray, tables: TableSet) -> np.ndarray:
        table_idx = np.asarray(table_idx, dtype=np.int64).ravel()
        symbols = np.zeros(table_idx.shape, dtype=np.int64)
        for t in np.unique(table_idx).tolist():
            member = table_idx == t
            count = int(member.sum())
            try:
                values = np.asarray(self._coder.decode(tables.model(t), count), dtype=np.int64)
            except (ValueError, RuntimeError, AssertionError) as exc:
                raise CorruptFileError(f"range-coded stream is damaged ({exc})") from None
            esc = tables.escape_symbol(t)
            values = values + tables.offsets[t]
            hit = np.flatnonzero(values == esc + tables.offsets[t])
            for i in hit.tolist():
                try:
                    values[i] = next(self._escapes)
                except StopIteration:
                    raise CorruptFileError("escape stream ended early") from None
            symbols[member] = values
        return symbols
