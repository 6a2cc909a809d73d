"""The ``need`` chunk: the lowest aec version that decodes a file.

Written into every version-3 file from aec 0.2.0 on, so that a release that lacks the
file's model can say which release brings it (docs/bitstream.md). The chunk is
ancillary: readers that do not know it (0.1.0) skip it, and it changes nothing about
how a file decodes.

Payload, 7 bytes: the version as three little-endian uint16 (major, minor, patch), then
a flags byte whose bit 0 says that the file's model is one aec ships (so that release
has it); the other bits are 0 and ignored.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import CorruptFileError
from ..version import Version, version_text
from .chunks import register_chunk

CHUNK_NEED = register_chunk(b"need", "codec: lowest aec version that decodes the file")
_PAYLOAD = struct.Struct("<HHHB")
_SHIPPED_MODEL = 1

# The aec version that introduced each container version (all three predate 0.2.0).
FORMAT_SINCE: dict[int, Version] = {1: (0, 1, 0), 2: (0, 1, 0), 3: (0, 1, 0)}
# The aec version that introduced the residual layer (chunk RESD).
RESIDUAL_SINCE: Version = (0, 3, 0)


@dataclass(frozen=True)
class Requirement:
    version: Version  # the lowest aec version that decodes the file
    shipped_model: bool  # whether its model is one aec ships (from that version on)

    @property
    def text(self) -> str:
        return version_text(self.version)

    def pack(self) -> bytes:
        return _PAYLOAD.pack(*self.version, _SHIPPED_MODEL if self.shipped_model else 0)

    @classmethod
    def unpack(cls, payload: bytes) -> Requirement:
        if len(payload) < _PAYLOAD.size:  # longer payloads: later fields, ignored here
            raise CorruptFileError(f"chunk need holds {len(payload)} bytes, not "
                                   f"{_PAYLOAD.size}")
        major, minor, patch, flags = _PAYLOAD.unpack_from(payload)
        return cls((major, minor, patch), bool(flags & _SHIPPED_MODEL))
