"""The entropy coder alone: integer tables, grouping by table index, escapes."""

from __future__ import annotations

import numpy as np
import pytest

from neuralcodec.entropy import (
    SymbolDecoder,
    SymbolEncoder,
    TableSet,
    pack_varints,
    unpack_varints,
)
from neuralcodec.errors import CorruptFileError


def make_tables() -> TableSet:
    # Two tables: a peaked one over -2..2 and a flat one over -5..5, each + escape bin.
    peaked = np.array([4, 16, 40, 16, 4, 1], dtype=np.float64)  # values -2..2, then escape
    flat = np.ones(12)
    rows, lengths, offsets = [], [], []
    for pmf, offset in ((peaked, -2), (flat, -5)):
        freqs = np.maximum(1, np.round(pmf / pmf.sum() * 65536)).astype(np.int64)
        freqs[np.argmax(freqs)] += 65536 - freqs.sum()
        cdf = np.concatenate([[0], np.cumsum(freqs)])
        rows.append(cdf)
        lengths.append(len(cdf))
        offsets.append(offset)
    width = max(len(r) for r in rows)
    cdfs = np.zeros((2, width), dtype=np.int64)
    for i, r in enumerate(rows):
        cdfs[i, : len(r)] = r
    return TableSet(cdfs, np.array(lengths), np.array(offsets))


def test_roundtrip_with_escapes():
    rng = np.random.default_rng(0)
    tables = make_tables()
    symbols = rng.integers(-3, 4, 500)
    symbols[::37] = rng.integers(-10_000, 10_000, len(symbols[::37]))  # far out of range
    idx = rng.integers(0, 2, 500)
    enc = SymbolEncoder()
    enc.encode(symbols, idx, tables)
    stream, escapes = enc.finish()
    assert escapes, "out-of-range values must go to the escape list"
    dec = SymbolDecoder(stream, unpack_varints(pack_varints(escapes)))
    assert np.array_equal(dec.decode(idx, tables), symbols)


def test_peaked_table_compresses_peaked_data():
    tables = make_tables()
    symbols = np.zeros(4000, dtype=np.int64)
    enc = SymbolEncoder()
    enc.encode(symbols, np.zeros_like(symbols), tables)
    stream, _ = enc.finish()
    # -log2(40/81) ~ 1.02 bits per symbol
    assert len(stream) * 8 < 4000 * 1.2


@pytest.mark.parametrize("values", [[0], [1, -1, 63, -64, 64, -65], [2**40, -(2**40)]])
def test_varints_roundtrip(values):
    assert list(unpack_varints(pack_varints(values))) == values


def test_truncated_varint_is_reported():
    data = pack_varints([10**9])
    with pytest.raises(CorruptFileError):
        list(unpack_varints(data[:-1]))


def test_missing_escape_is_reported():
    tables = make_tables()
    symbols = np.array([500])
    enc = SymbolEncoder()
    enc.encode(symbols, np.array([0]), tables)
    stream, _ = enc.finish()
    with pytest.raises(CorruptFileError, match="escape"):
        SymbolDecoder(stream, iter([])).decode(np.array([0]), tables)


def test_per_symbol_rows_round_trip_with_wide_tables_and_escapes(monkeypatch):
    # encode_rows codes narrow tables in one batched call and wide ones table by table;
    # both kinds, interleaved with plain encode() calls in one stream, must come back.
    from neuralcodec.entropy import range_coder

    monkeypatch.setattr(range_coder, "ROW_WIDTH", 8)  # the flat table (12 symbols) is wide
    rng = np.random.default_rng(3)
    tables = make_tables()
    groups = []
    enc = SymbolEncoder()
    for n in (1, 40, 300, 7):
        symbols = rng.integers(-6, 7, n)
        symbols[::11] = rng.integers(-5_000, 5_000, len(symbols[::11]))
        idx = rng.integers(0, 2, n)
        groups.append((symbols, idx))
        enc.encode_rows(symbols, idx, tables)
        enc.encode(symbols[::-1], idx, tables)
    stream, escapes = enc.finish()
    dec = SymbolDecoder(stream, unpack_varints(pack_varints(escapes)))
    for symbols, idx in groups:
        assert np.array_equal(dec.decode_rows(idx, tables), symbols)
        assert np.array_equal(dec.decode(idx, tables), symbols[::-1])
