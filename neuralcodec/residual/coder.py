"""Range coding of a quantized residual under a :class:`~.model.ResidualModel`.

The encoder knows every symbol, but builds each pass's context only from what the decoder
will have decoded by then (:mod:`.context` reads only earlier passes), so both compute
the same means and scales. Symbols go through constriction with the fixed tables of
:mod:`.tables`; values beyond a table's range go to the escape stream.

This module computes the networks in float32: encoder and decoder agree on one machine.
Files that decode everywhere need the integer form (as the latents' parameter path).
"""

from __future__ import annotations

import numpy as np

from ..entropy import SymbolDecoder, SymbolEncoder, TableSet, pack_varints, unpack_varints
from .context import Features, passes
from .model import ResidualModel
from .quantize import step
from .tables import bin_probability, table_indices


def ideal_bits(xhat: np.ndarray, symbols: np.ndarray, quality: float, max_error: int,
               model: ResidualModel) -> float:
    """Bits of the symbols under the model's continuous (unquantized) distributions."""
    delta = step(max_error)
    features = Features(xhat, quality, delta, model.xhat_radius)
    decoded = symbols.astype(np.float32) * delta
    bits = 0.0
    for p in passes(xhat.shape[2], model.schedule):
        rows, cols = p.positions(xhat.shape[:2])
        mean, scale = model(p, features(p, decoded))
        q = symbols[rows, cols, p.channel].ravel()
        bits -= float(np.log2(bin_probability(q, mean / delta, scale / delta)).sum())
    return bits


def encode(xhat: np.ndarray, symbols: np.ndarray, quality: float, max_error: int,
           model: ResidualModel, tables: TableSet) -> tuple[bytes, bytes]:
    """(range-coded stream, escape stream) of ``symbols`` (H, W, C) given ``x̂``."""
    delta = step(max_error)
    features = Features(xhat, quality, delta, model.xhat_radius)
    decoded = symbols.astype(np.float32) * delta
    coder = SymbolEncoder()
    for p in passes(xhat.shape[2], model.schedule):
        rows, cols = p.positions(xhat.shape[:2])
        mean, scale = model(p, features(p, decoded))
        base, index = table_indices(mean / delta, scale / delta)
        coder.encode(symbols[rows, cols, p.channel].ravel() - base, index, tables)
    stream, escapes = coder.finish()
    return stream, pack_varints(escapes)


def decode(xhat: np.ndarray, stream: bytes, escapes: bytes, quality: float, max_error: int,
           model: ResidualModel, tables: TableSet) -> np.ndarray:
    """The symbols (H, W, C) int32 that :func:`encode` coded."""
    delta = step(max_error)
    features = Features(xhat, quality, delta, model.xhat_radius)
    symbols = np.zeros(xhat.shape, dtype=np.int32)
    decoded = np.zeros(xhat.shape, dtype=np.float32)
    coder = SymbolDecoder(stream, unpack_varints(escapes))
    for p in passes(xhat.shape[2], model.schedule):
        rows, cols = p.positions(xhat.shape[:2])
        mean, scale = model(p, features(p, decoded))
        base, index = table_indices(mean / delta, scale / delta)
        q = (coder.decode(index, tables) + base).reshape(symbols[rows, cols, p.channel].shape)
        symbols[rows, cols, p.channel] = q
        decoded[rows, cols, p.channel] = q * delta
    return symbols
