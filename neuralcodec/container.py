"""The .aec container: a versioned little-endian header and CRC-checked chunks.

See docs/bitstream.md for the byte layout. This module only packs and parses bytes; it
knows nothing about models or images beyond the header fields.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from .errors import AecError, CorruptFileError

MAGIC = b"\x89AEC\r\n\x1a\n"
# Version 2: integer entropy-parameter path (exact everywhere). Version 1: the same
# layout with a float64 parameter path; still read, no longer written by default.
VERSION = 2
READABLE_VERSIONS = (1, 2)
MODES = ("L", "LA", "RGB", "RGBA")
QUALITY_SCALE = 100  # quality is stored in hundredths: 0..10000
MAX_DIMENSION = 1 << 20

# Chunk tags: upper-case first letter = critical (a reader must understand it).
CHUNK_HYPER = b"HYPR"
CHUNK_LATENT = b"LATN"
CHUNK_ESCAPE = b"ESCP"
CHUNK_ALPHA = b"ALPH"
KNOWN_CHUNKS = (CHUNK_HYPER, CHUNK_LATENT, CHUNK_ESCAPE, CHUNK_ALPHA)

_FIXED = struct.Struct("<8sHH")  # magic, version, header length
_TAIL = struct.Struct("<8sIIBHB")  # fingerprint, width, height, mode, quality, chunk count
_CHUNK = struct.Struct("<4sII")  # tag, payload length, payload CRC32


@dataclass(frozen=True)
class Header:
    model: str
    fingerprint: bytes
    width: int
    height: int
    mode: str
    quality: int  # hundredths of the user's 0..100 quality
    version: int = VERSION

    @property
    def quality_value(self) -> float:
        return self.quality / QUALITY_SCALE


@dataclass
class AecFile:
    header: Header
    chunks: dict[bytes, bytes] = field(default_factory=dict)


def quantize_quality(quality: float) -> int:
    """The stored quality; both ends derive the rate level from this integer."""
    q = float(quality)
    if not 0.0 <= q <= 100.0:
        raise AecError(f"quality must be between 0 and 100, got {quality}")
    return int(round(q * QUALITY_SCALE))


def pack(header: Header, chunks: dict[bytes, bytes]) -> bytes:
    model = header.model.encode("ascii")
    if not 0 < len(model) < 256:
        raise ValueError("model id must be 1..255 ASCII bytes")
    if len(header.fingerprint) != 8:
        raise ValueError("fingerprint must be 8 bytes")
    body = (
        bytes([len(model)])
        + model
        + _TAIL.pack(
            header.fingerprint, header.width, header.height, MODES.index(header.mode),
            header.quality, len(chunks),
        )
    )
    if header.version not in READABLE_VERSIONS:
        raise ValueError(f"cannot write format version {header.version}")
    header_len = _FIXED.size + len(body) + 4
    head = _FIXED.pack(MAGIC, header.version, header_len) + body
    out = [head, struct.pack("<I", zlib.crc32(head))]
    for tag, payload in chunks.items():
        out.append(_CHUNK.pack(tag, len(payload), zlib.crc32(payload)))
        out.append(payload)
    return b"".join(out)


def is_aec(prefix: bytes) -> bool:
    return prefix[: len(MAGIC)] == MAGIC


def parse_header(data: bytes) -> tuple[Header, int, int]:
    """Validate and parse the header: (header, offset of the first chunk, chunk count)."""
    if len(data) < len(MAGIC) or not is_aec(data):
        raise CorruptFileError("not an .aec file (bad magic bytes)")
    if len(data) < _FIXED.size:
        raise CorruptFileError("file is truncated inside the header")
    _, version, header_len = _FIXED.unpack_from(data)
    if version not in READABLE_VERSIONS:
        readable = ", ".join(map(str, READABLE_VERSIONS))
        raise AecError(
            f"unsupported .aec format version {version} (this aec reads versions {readable})"
        )
    min_len = _FIXED.size + 1 + 1 + _TAIL.size + 4
    if header_len < min_len or header_len > min_len + 254:
        raise CorruptFileError(f"header length {header_len} is invalid")
    if len(data) < header_len:
        raise CorruptFileError("file is truncated inside the header")
    stored_crc = struct.unpack_from("<I", data, header_len - 4)[0]
    if zlib.crc32(data[: header_len - 4]) != stored_crc:
        raise CorruptFileError("header CRC mismatch: the file is damaged")
    pos = _FIXED.size
    n = data[pos]
    if pos + 1 + n + _TAIL.size + 4 != header_len:
        raise CorruptFileError("header length does not match its fields")
    try:
        model = data[pos + 1 : pos + 1 + n].decode("ascii")
    except UnicodeDecodeError:
        raise CorruptFileError("model id is not ASCII") from None
    pos += 1 + n
    fingerprint, width, height, mode, quality, n_chunks = _TAIL.unpack_from(data, pos)
    if not (0 < width <= MAX_DIMENSION and 0 < height <= MAX_DIMENSION):
        raise CorruptFileError(f"invalid image size {width}x{height}")
    if mode >= len(MODES):
        raise CorruptFileError(f"unknown pixel mode {mode}")
    if quality > 100 * QUALITY_SCALE:
        raise CorruptFileError(f"invalid quality {quality}")
    header = Header(model, fingerprint, width, height, MODES[mode], quality, version)
    return header, header_len, n_chunks


def unpack(data: bytes) -> AecFile:
    """Parse a whole file, checking every chunk's length and CRC."""
    header, pos, n_chunks = parse_header(data)
    chunks: dict[bytes, bytes] = {}
    for _ in range(n_chunks):
        if len(data) < pos + _CHUNK.size:
            raise CorruptFileError("file is truncated (missing chunk header)")
        tag, length, crc = _CHUNK.unpack_from(data, pos)
        pos += _CHUNK.size
        name = tag.decode("latin-1")
        if len(data) < pos + length:
            raise CorruptFileError(f"file is truncated inside chunk {name}")
        payload = data[pos : pos + length]
        pos += length
        if zlib.crc32(payload) != crc:
            raise CorruptFileError(f"CRC mismatch in chunk {name}: the file is damaged")
        if tag in chunks:
            raise CorruptFileError(f"chunk {name} appears twice")
        if tag not in KNOWN_CHUNKS:
            if tag[:1].isupper():
                raise CorruptFileError(f"unknown critical chunk {name}")
            continue  # ancillary chunk from a newer writer: safe to skip
        chunks[tag] = payload
    if pos != len(data):
        raise CorruptFileError(f"{len(data) - pos} unexpected bytes after the last chunk")
    if header.mode in ("LA", "RGBA") and CHUNK_ALPHA not in chunks:
        raise CorruptFileError("alpha chunk is missing for an image with alpha")
    return AecFile(header, chunks)
