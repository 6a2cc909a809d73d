"""The escape stream: values outside a table's range, as zig-zag LEB128 varints."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..errors import CorruptFileError


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
