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

from ..errors import CorruptFileError
from .cdf_tables import TableSet


def _table_runs(table_idx: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """The coding order (a stable sort by table: each table's members in their order) and
    the runs ``(table, start, end)`` of it, tables ascending; one sort instead of a mask
    per table. Indices that fit 16 bits are sorted as such: NumPy then radix-sorts (the
    same stable order, several times faster than its merge sort of int64)."""
    if len(table_idx) and 0 <= table_idx.min() and table_idx.max() < 2**15:
        order = np.argsort(table_idx.astype(np.int16), kind="stable")
    else:
        order = np.argsort(table_idx, kind="stable")
    ordered = table_idx[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]][:len(ordered)])
    ends = np.append(starts[1:], len(ordered))
    return order, list(zip(ordered[starts].tolist(), starts.tolist(), ends.tolist(),
                           strict=True))


# Tables of at most this many symbols are coded per symbol in one batched call (one row of
# probabilities each); wider ones, table by table.
ROW_WIDTH = 64
_BATCHED = constriction.stream.model.Categorical(perfect=False)


def _narrow(table_idx: np.ndarray, tables: TableSet) -> np.ndarray:
    return tables.lengths[table_idx] - 1 <= ROW_WIDTH


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
        order, runs = _table_runs(table_idx)
        for t, start, end in runs:
            values = symbols[order[start:end]] - tables.offsets[t]
            esc = tables.escape_symbol(t)
            over = (values < 0) | (values >= esc)
            if over.any():
                self.escapes.extend((values[over] + tables.offsets[t]).tolist())
                values = np.where(over, esc, values)
            self._coder.encode(values.astype(np.int32), tables.model(t))

    def encode_rows(self, symbols: np.ndarray, table_idx: np.ndarray, tables: TableSet
                    ) -> None:
        """Code ``symbols`` with per-symbol tables: those of narrow tables first, in their
        order, in one batched call (fast when many tables mix, as in an auto-regressive
        model's steps), then the rest as :meth:`encode` does. Decode with
        :meth:`SymbolDecoder.decode_rows`."""
        symbols = np.asarray(symbols, dtype=np.int64).ravel()
        table_idx = np.asarray(table_idx, dtype=np.int64).ravel()
        narrow = _narrow(table_idx, tables)
        t = table_idx[narrow]
        values = symbols[narrow] - tables.offsets[t]
        esc = tables.lengths[t] - 2
        over = (values < 0) | (values >= esc)
        if over.any():
            self.escapes.extend(symbols[narrow][over].tolist())
            values = np.where(over, esc, values)
        if len(t):
            self._coder.encode(values.astype(np.int32), _BATCHED, tables.rows(ROW_WIDTH)[t])
        if not narrow.all():
            self.encode(symbols[~narrow], table_idx[~narrow], tables)

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
        order, runs = _table_runs(table_idx)
        for t, start, end in runs:
            count = end - start
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
            symbols[order[start:end]] = values
        return symbols

    def decode_rows(self, table_idx: np.ndarray, tables: TableSet) -> np.ndarray:
        """The symbols :meth:`SymbolEncoder.encode_rows` wrote with these tables."""
        table_idx = np.asarray(table_idx, dtype=np.int64).ravel()
        narrow = _narrow(table_idx, tables)
        t = table_idx[narrow]
        symbols = np.zeros(table_idx.shape, dtype=np.int64)
        if len(t):
            try:
                values = np.asarray(self._coder.decode(_BATCHED, tables.rows(ROW_WIDTH)[t]),
                                    dtype=np.int64)
            except (ValueError, RuntimeError, AssertionError) as exc:
                raise CorruptFileError(f"range-coded stream is damaged ({exc})") from None
            esc = tables.lengths[t] - 2
            hit = values >= esc  # the escape, or a padding entry of a damaged stream
            values += tables.offsets[t]
            for i in np.flatnonzero(hit).tolist():
                try:
                    values[i] = next(self._escapes)
                except StopIteration:
                    raise CorruptFileError("escape stream ended early") from None
            symbols[narrow] = values
        if not narrow.all():
            symbols[~narrow] = self.decode(table_idx[~narrow], tables)
        return symbols
