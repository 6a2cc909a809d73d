"""The bytes of the residual layer's chunks (docs/bitstream.md, "The residual layer").

``RESD`` (critical, one per tile): the maximum error K, the residual model that coded it
(name and the first 8 bytes of the SHA-256 of its weights, as the header names the base
model) and that model's payload, which covers the tile's box of the final (cross-faded)
reconstruction. ``exsy`` (ancillary, whole image): the revision of the exact synthesis
that reconstructs the base layer; a reader that does not know it decodes the float
synthesis instead, within one level.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import CorruptFileError
from .container import printable

# The largest K a file may carry (a residual model may support less).
MAX_ERROR_LIMIT = 8
EXACT_REVISION = 1  # of the exact synthesis (exact_synthesis.py of the hyperprior)
_FINGERPRINT = 8


@dataclass(frozen=True)
class ResidualChunk:
    max_error: int  # K: every sample within K of the input; 0 is lossless
    model: str  # the residual model's name
    fingerprint: bytes  # first 8 bytes of the SHA-256 of its weights
    payload: bytes  # the residual model's coded bytes

    def pack(self) -> bytes:
        name = self.model.encode("ascii")
        if not (0 <= self.max_error <= MAX_ERROR_LIMIT and 0 < len(name) < 256
                and len(self.fingerprint) == _FINGERPRINT):
            raise ValueError("residual chunk fields out of range")
        return bytes([self.max_error, len(name)]) + name + self.fingerprint + self.payload

    @classmethod
    def unpack(cls, data: bytes) -> ResidualChunk:
        if len(data) < 2 or len(data) < 2 + data[1] + _FINGERPRINT or data[1] == 0:
            raise CorruptFileError(f"chunk RESD holds {len(data)} bytes, too few for its "
                                   "fields")
        max_error, n = data[0], data[1]
        if max_error > MAX_ERROR_LIMIT:
            raise CorruptFileError(f"chunk RESD gives a maximum error of {max_error}, above "
                                   f"{MAX_ERROR_LIMIT}")
        raw = data[2:2 + n]
        if printable(raw) != raw.decode("latin-1"):
            raise CorruptFileError(f"chunk RESD names residual model {printable(raw)}, not "
                                   "printable ASCII")
        end = 2 + n + _FINGERPRINT
        return cls(max_error, raw.decode("ascii"), data[2 + n:end], data[end:])


def exact_marker() -> bytes:
    """The payload of ``exsy``: the exact synthesis's revision."""
    return bytes([EXACT_REVISION])


def wants_exact(payload: bytes | None) -> bool:
    """Whether an ``exsy`` payload asks for the exact synthesis this release has (a later
    revision is read as an older aec reads the chunk: not at all)."""
    return payload is not None and payload[:1] == bytes([EXACT_REVISION])
