"""The .aec container: a versioned little-endian header, a chunk directory and payloads.

See docs/bitstream.md for the byte layout. This module only packs and parses bytes; it
knows nothing about models or images beyond the header fields and the tile grid.

Version 3 puts every chunk's tag, tile, length and CRC in a CRC-protected directory,
so every byte of a file is covered by a CRC and a damaged payload is named and can be
skipped without losing the others. Versions 1 and 2 (one untiled image; tags and lengths
unprotected) are still read.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import IO

from ..errors import AecError, CorruptFileError
from ..version import VERSION as THIS_VERSION
from ..version import __version__
from .chunks import CHUNK_ALPHA, is_known
from .grid import TileGrid
from .quality import STORED_MAX, from_stored
from .requirement import CHUNK_NEED, Requirement

MAGIC = b"\x89AEC\r\n\x1a\n"
AEC_SUFFIX = ".aec"  # the file name suffix of .aec files
# 3: tiles, chunk directory, metadata. 2: integer entropy-parameter path (exact
# everywhere), untiled. 1: as 2 with a float64 parameter path. 1 and 2 are still read and
# can be written for comparisons.
VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
TILED_VERSION = 3
MODES = ("L", "LA", "RGB", "RGBA")
MAX_DIMENSION = 1 << 20

# Directory tile index of chunks that belong to the whole image (metadata).
IMAGE_WIDE = 0xFFFFFFFF

_FIXED = struct.Struct("<8sHH")  # magic, version, header length
_TAIL_V2 = struct.Struct("<8sIIBHB")  # fingerprint, width, height, mode, quality, chunks
# fingerprint, width, height, mode, quality, tile width, tile height, tile overlap
_TAIL_V3 = struct.Struct("<8sIIBHHHH")
_CHUNK_V2 = struct.Struct("<4sII")  # tag, payload length, payload CRC32
_ENTRY = struct.Struct("<4sIII")  # v3 directory entry: tag, tile, payload length, CRC32
_COUNT = struct.Struct("<I")
_CRC = struct.Struct("<I")


@dataclass(frozen=True)
class Header:
    model: str
    fingerprint: bytes
    width: int
    height: int
    mode: str
    quality: int  # hundredths of the user's 0..100 quality
    version: int = VERSION
    # Tile size; versions 1 and 2 are one tile of the whole image (0 = that).
    tile_width: int = 0
    tile_height: int = 0
    tile_overlap: int = 0

    @property
    def quality_value(self) -> float:
        return from_stored(self.quality)

    @property
    def grid(self) -> TileGrid:
        return TileGrid(self.width, self.height, self.tile_width or self.width,
                        self.tile_height or self.height, self.tile_overlap)


@dataclass(frozen=True)
class LostChunk:
    """A chunk that failed its CRC or lies beyond the end of a truncated file."""

    tag: bytes
    tile: int  # IMAGE_WIDE for whole-image chunks
    reason: str

    def __str__(self) -> str:
        return f"{chunk_name(self.tag, self.tile)} ({self.reason})"


@dataclass
class AecFile:
    header: Header
    tiles: list[dict[bytes, bytes]]  # per tile of header.grid: tag -> payload
    chunks: dict[bytes, bytes] = field(default_factory=dict)  # whole-image chunks
    lost: list[LostChunk] = field(default_factory=list)  # only when parsed with salvage


def printable(raw: bytes) -> str:
    """Bytes from a file as safe text for a message: printable ASCII, else hex."""
    if all(0x20 < b < 0x7F for b in raw):
        return raw.decode("ascii")
    return "0x" + raw.hex()


def chunk_name(tag: bytes, tile: int) -> str:
    """How messages name a chunk: ``chunk LATN of tile 3``."""
    where = "" if tile == IMAGE_WIDE else f" of tile {tile}"
    return f"chunk {printable(tag)}{where}"


def pack(
    header: Header,
    tiles: list[dict[bytes, bytes]],
    chunks: dict[bytes, bytes] | None = None,
) -> bytes:
    """Serialise a file: per-tile chunks (in grid order) and whole-image chunks.

    Versions 1 and 2 hold exactly one tile and no whole-image chunks.
    """
    model = header.model.encode("ascii")
    if not 0 < len(model) < 256:
        raise ValueError("model id must be 1..255 ASCII bytes")
    if len(header.fingerprint) != 8:
        raise ValueError("fingerprint must be 8 bytes")
    if header.version not in READABLE_VERSIONS:
        raise ValueError(f"cannot write format version {header.version}")
    chunks = chunks or {}
    mode = MODES.index(header.mode)
    if header.version < TILED_VERSION:
        if len(tiles) != 1 or chunks:
            raise ValueError(f"format version {header.version} holds one untiled image")
        tail = _TAIL_V2.pack(header.fingerprint, header.width, header.height, mode,
                             header.quality, len(tiles[0]))
    else:
        if len(tiles) != len(header.grid):
            raise ValueError(f"{len(tiles)} tiles given for a grid of {len(header.grid)}")
        tail = _TAIL_V3.pack(header.fingerprint, header.width, header.height, mode,
                             header.quality, header.tile_width, header.tile_height,
                             header.tile_overlap)
    body = bytes([len(model)]) + model + tail
    head = _FIXED.pack(MAGIC, header.version, _FIXED.size + len(body) + _CRC.size) + body
    out = [head, _CRC.pack(zlib.crc32(head))]
    if header.version < TILED_VERSION:
        for tag, payload in tiles[0].items():
            out += [_CHUNK_V2.pack(tag, len(payload), zlib.crc32(payload)), payload]
        return b"".join(out)
    entries = [(tag, i, payload) for i, tile in enumerate(tiles) for tag, payload in tile.items()]
    entries += [(tag, IMAGE_WIDE, payload) for tag, payload in chunks.items()]
    directory = _COUNT.pack(len(entries)) + b"".join(
        _ENTRY.pack(tag, i, len(payload), zlib.crc32(payload)) for tag, i, payload in entries
    )
    out += [directory, _CRC.pack(zlib.crc32(directory))]
    out += [payload for _, _, payload in entries]
    return b"".join(out)


def is_aec(prefix: bytes) -> bool:
    return prefix[: len(MAGIC)] == MAGIC


def _tail(version: int) -> struct.Struct:
    return _TAIL_V3 if version >= TILED_VERSION else _TAIL_V2


def read_header(fp: IO[bytes]) -> Header:
    """The header of a file object positioned at a file's start, reading the header's
    bytes only (an image viewer's ``open``); nothing after it is checked."""
    head = fp.read(_FIXED.size)
    if len(head) == _FIXED.size and is_aec(head):
        _, _, header_len = _FIXED.unpack_from(head)
        head += fp.read(max(0, header_len - len(head)))
    return parse_header(head, header_only=True)[0]


def read_image_chunks(fp: IO[bytes]) -> dict[bytes, bytes]:
    """The whole-image chunks (metadata) of a file, read from a seekable file object
    positioned at its start: the header, the chunk directory and those chunks' payloads,
    each checked against its CRC, and nothing else (an image viewer's ``open``). Versions
    1 and 2 have none. Damage raises CorruptFileError."""
    start = fp.tell()
    size = fp.seek(0, 2) - start
    fp.seek(start)
    head = fp.read(_FIXED.size)
    if len(head) == _FIXED.size and is_aec(head):
        head += fp.read(max(0, _FIXED.unpack_from(head)[2] - len(head)))
    header, header_len, _ = parse_header(head, header_only=True)
    if header.version < TILED_VERSION:
        return {}
    (n_chunks,) = _COUNT.unpack(_read_exactly(fp, _COUNT.size))
    # Bounded by the file's size before it is read, as in parse_header.
    if (size - header_len - _COUNT.size - _CRC.size) // _ENTRY.size < n_chunks:
        raise CorruptFileError(f"file is truncated inside the chunk directory "
                               f"({n_chunks} chunks announced)")
    entries = _read_exactly(fp, n_chunks * _ENTRY.size)
    stored_crc = _CRC.unpack(_read_exactly(fp, _CRC.size))[0]
    if zlib.crc32(_COUNT.pack(n_chunks) + entries) != stored_crc:
        raise CorruptFileError("chunk directory CRC mismatch: the file is damaged")
    chunks: dict[bytes, bytes] = {}
    seen: set[tuple[bytes, int]] = set()
    offset = start + header_len + _COUNT.size + len(entries) + _CRC.size
    for tag, tile, length, crc in _ENTRY.iter_unpack(entries):
        if _check_chunk(tag, tile, seen) and tile == IMAGE_WIDE:
            if offset + length > start + size:
                raise CorruptFileError(f"file is truncated inside {chunk_name(tag, tile)}")
            fp.seek(offset)
            payload = _read_exactly(fp, length, chunk_name(tag, tile))
            if zlib.crc32(payload) != crc:
                raise CorruptFileError(
                    f"CRC mismatch in {chunk_name(tag, tile)}: the file is damaged")
            chunks[tag] = payload
        offset += length
    return chunks


def _read_exactly(fp: IO[bytes], n: int, what: str = "the chunk directory") -> bytes:
    data = fp.read(n)
    if len(data) != n:
        raise CorruptFileError(f"file is truncated inside {what}")
    return data


def parse_header(data: bytes, header_only: bool = False) -> tuple[Header, int, int]:
    """Validate and parse the header: (header, offset after it, chunk count).

    For version 3 the offset is that of the chunk directory, whose count is read and
    bounded by the file size here (its entries are checked by :func:`unpack`), unless
    ``header_only`` (``data`` then need not hold more than the header; count 0).
    """
    if len(data) < len(MAGIC) or not is_aec(data):
        raise CorruptFileError("not an .aec file (bad magic bytes)")
    if len(data) < _FIXED.size:
        raise CorruptFileError("file is truncated inside the header")
    _, version, header_len = _FIXED.unpack_from(data)
    if version not in READABLE_VERSIONS:
        readable = f"{__version__} reads versions {READABLE_VERSIONS[0]}-{READABLE_VERSIONS[-1]}"
        if version > READABLE_VERSIONS[-1]:
            raise AecError(f"format version {version} needs a later aec ({readable})")
        raise CorruptFileError(f"format version {version} was never written ({readable})")
    tail = _tail(version)
    min_len = _FIXED.size + 1 + 1 + tail.size + _CRC.size
    if header_len < min_len or header_len > min_len + 254:
        raise CorruptFileError(f"header length {header_len} is invalid")
    if len(data) < header_len:
        raise CorruptFileError("file is truncated inside the header")
    stored_crc = _CRC.unpack_from(data, header_len - 4)[0]
    if zlib.crc32(data[: header_len - 4]) != stored_crc:
        raise CorruptFileError("header CRC mismatch: the file is damaged")
    pos = _FIXED.size
    n = data[pos]
    if pos + 1 + n + tail.size + _CRC.size != header_len:
        raise CorruptFileError("header length does not match its fields")
    model_id = data[pos + 1 : pos + 1 + n]
    if printable(model_id) != model_id.decode("latin-1"):
        raise CorruptFileError(f"model id {printable(model_id)} is not printable ASCII")
    model = model_id.decode("ascii")
    pos += 1 + n
    fingerprint, width, height, mode, quality, *rest = tail.unpack_from(data, pos)
    if not (0 < width <= MAX_DIMENSION and 0 < height <= MAX_DIMENSION):
        raise CorruptFileError(f"invalid image size {width}x{height}")
    if mode >= len(MODES):
        raise CorruptFileError(f"unknown pixel mode {mode}")
    if quality > STORED_MAX:
        raise CorruptFileError(f"invalid quality {quality}")
    if version < TILED_VERSION:
        (n_chunks,) = rest
        header = Header(model, fingerprint, width, height, MODES[mode], quality, version)
        return header, header_len, n_chunks
    tile_width, tile_height, overlap = rest
    if not (tile_width and tile_height):
        raise CorruptFileError(f"invalid tile size {tile_width}x{tile_height}")
    if 2 * overlap > min(tile_width, tile_height):
        raise CorruptFileError(f"tile overlap {overlap} is more than half the tile size")
    header = Header(model, fingerprint, width, height, MODES[mode], quality, version,
                    tile_width, tile_height, overlap)
    if header_only:
        return header, header_len, 0
    if len(data) < header_len + _COUNT.size:
        raise CorruptFileError("file is truncated inside the chunk directory")
    (n_chunks,) = _COUNT.unpack_from(data, header_len)
    # Every tile has at least one chunk and every entry takes _ENTRY.size bytes, so both
    # counts are bounded by the file's size before anything is allocated for them.
    if (len(data) - header_len - _COUNT.size - _CRC.size) // _ENTRY.size < n_chunks:
        raise CorruptFileError(f"file is truncated inside the chunk directory "
                               f"({n_chunks} chunks announced)")
    if n_chunks < len(header.grid):
        raise CorruptFileError(f"the chunk directory lists {n_chunks} chunks for "
                               f"{len(header.grid)} tiles")
    return header, header_len, n_chunks


def _check_chunk(tag: bytes, tile: int, seen: set[tuple[bytes, int]],
                 unknown: list[str] | None = None) -> bool:
    """Structural checks of one chunk; False for an unknown ancillary chunk (skipped).
    An unknown critical chunk fails, or is listed in ``unknown`` (the caller fails once
    it has read the need chunk, which may say which release writes it)."""
    name = chunk_name(tag, tile)
    if (tag, tile) in seen:
        raise CorruptFileError(f"{name} appears twice")
    seen.add((tag, tile))
    if not is_known(tag):
        if tag[:1].isupper():
            if unknown is None:
                raise CorruptFileError(f"unknown critical {name}")
            unknown.append(name)
        return False
    return True


def _unknown_critical(name: str, need: bytes | None) -> AecError:
    """The failure for a critical chunk this release does not know: a file of a later
    release says which (its need chunk), anything else is damaged."""
    if need is not None:
        try:
            requirement = Requirement.unpack(need)
        except CorruptFileError:
            requirement = None
        if requirement is not None and requirement.version > THIS_VERSION:
            return AecError(f"needs aec {requirement.text} or later (its {name} is "
                            f"unknown to aec {__version__}; pip install -U neuralcodec)")
    return CorruptFileError(f"unknown critical {name}")


def _unpack_untiled(header: Header, data: bytes, pos: int, n_chunks: int) -> AecFile:
    """Versions 1 and 2: one tile; tags and lengths are not CRC-protected there."""
    chunks: dict[bytes, bytes] = {}
    seen: set[tuple[bytes, int]] = set()
    for _ in range(n_chunks):
        if len(data) < pos + _CHUNK_V2.size:
            raise CorruptFileError("file is truncated (missing chunk header)")
        tag, length, crc = _CHUNK_V2.unpack_from(data, pos)
        pos += _CHUNK_V2.size
        name = printable(tag)
        if len(data) < pos + length:
            raise CorruptFileError(f"file is truncated inside chunk {name}")
        payload = data[pos : pos + length]
        pos += length
        if zlib.crc32(payload) != crc:
            raise CorruptFileError(f"CRC mismatch in chunk {name}: the file is damaged")
        if _check_chunk(tag, 0, seen):
            chunks[tag] = payload
    if pos != len(data):
        raise CorruptFileError(f"{len(data) - pos} unexpected bytes after the last chunk")
    if header.mode in ("LA", "RGBA") and CHUNK_ALPHA not in chunks:
        raise CorruptFileError("alpha chunk is missing for an image with alpha")
    return AecFile(header, [chunks])


def unpack(data: bytes, salvage: bool = False) -> AecFile:
    """Parse a whole file, checking every CRC.

    By default any damage raises :class:`CorruptFileError` naming what is damaged. With
    ``salvage`` (version 3 only), payloads that fail their CRC or lie beyond the end of
    a truncated file are left out and listed in ``AecFile.lost``; the header and the
    chunk directory must still be intact.
    """
    header, pos, n_chunks = parse_header(data)
    if header.version < TILED_VERSION:
        return _unpack_untiled(header, data, pos, n_chunks)
    dir_end = pos + _COUNT.size + n_chunks * _ENTRY.size
    if zlib.crc32(data[pos:dir_end]) != _CRC.unpack_from(data, dir_end)[0]:
        raise CorruptFileError("chunk directory CRC mismatch: the file is damaged")
    n_tiles = len(header.grid)
    tiles: list[dict[bytes, bytes]] = [{} for _ in range(n_tiles)]
    chunks: dict[bytes, bytes] = {}
    lost: list[LostChunk] = []
    seen: set[tuple[bytes, int]] = set()
    unknown: list[str] = []
    offset = dir_end + _CRC.size
    for tag, tile, length, crc in _ENTRY.iter_unpack(data[pos + _COUNT.size : dir_end]):
        if tile >= n_tiles and tile != IMAGE_WIDE:
            raise CorruptFileError(f"chunk directory names tile {tile} of {n_tiles}")
        known = _check_chunk(tag, tile, seen, unknown)
        start, offset = offset, offset + length
        if offset > len(data):
            problem = LostChunk(tag, tile, "beyond the end of the truncated file")
            if not salvage:
                raise CorruptFileError(f"file is truncated inside {chunk_name(tag, tile)}")
            lost.append(problem)
            continue
        payload = data[start:offset]
        if zlib.crc32(payload) != crc:
            if not salvage:
                raise CorruptFileError(
                    f"CRC mismatch in {chunk_name(tag, tile)}: the file is damaged")
            lost.append(LostChunk(tag, tile, "CRC mismatch"))
            continue
        if known:
            (chunks if tile == IMAGE_WIDE else tiles[tile])[tag] = payload
    if unknown:
        raise _unknown_critical(unknown[0], chunks.get(CHUNK_NEED))
    if offset < len(data) and not salvage:
        raise CorruptFileError(f"{len(data) - offset} unexpected bytes after the last chunk")
    damaged_tiles = {c.tile for c in lost}
    for i, tile in enumerate(tiles):
        if i in damaged_tiles:
            continue
        if not tile:
            raise CorruptFileError(f"tile {i} has no chunks")
        if header.mode in ("LA", "RGBA") and CHUNK_ALPHA not in tile:
            raise CorruptFileError(f"alpha chunk of tile {i} is missing")
    return AecFile(header, tiles, chunks, lost)
