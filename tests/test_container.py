"""Container parsing: every kind of damage gives one clear AecError, never garbage."""

from __future__ import annotations

import struct
import zlib

import pytest

from neuralcodec.errors import AecError, CorruptFileError
from neuralcodec.families.hyperprior import CHUNK_HYPER, CHUNK_LATENT
from neuralcodec.format import container
from neuralcodec.format.chunks import CHUNK_ICC
from neuralcodec.format.container import IMAGE_WIDE, Header
from neuralcodec.format.grid import TileGrid
from neuralcodec.format.quality import to_stored

# Two tiles of 32x17 and 1x17; a whole-image metadata chunk.
TILES = [
    {CHUNK_HYPER: b"\x01\x02\x03\x04", CHUNK_LATENT: b"\x05" * 8},
    {CHUNK_HYPER: b"\x06" * 4, CHUNK_LATENT: b"\x07" * 4},
]


def sample_file(version: int = container.VERSION, **overrides) -> bytes:
    fields = dict(model="aec-hp-ckbd", fingerprint=b"12345678", width=33, height=17,
                  mode="RGB", quality=6000, version=version)
    if version >= container.TILED_VERSION:
        fields.update(tile_width=32, tile_height=32, tile_overlap=4)
        tiles, chunks = TILES, {CHUNK_ICC: b"profile"}
    else:
        tiles, chunks = TILES[:1], {}
    fields.update(overrides)
    return container.pack(Header(**fields), tiles, chunks)


@pytest.mark.parametrize("version", container.READABLE_VERSIONS)
def test_pack_unpack_roundtrip(version):
    parsed = container.unpack(sample_file(version))
    h = parsed.header
    assert (h.model, h.width, h.height, h.mode, h.quality_value, h.version) == (
        "aec-hp-ckbd", 33, 17, "RGB", 60.0, version)
    expected = TILES if version >= container.TILED_VERSION else TILES[:1]
    assert parsed.tiles == expected
    assert len(h.grid) == len(expected)


def test_overlap_of_more_than_half_a_tile_is_refused():
    data = bytearray(sample_file())
    header_len = struct.unpack_from("<H", data, 10)[0]
    struct.pack_into("<H", data, header_len - 6, 17)
    with pytest.raises(CorruptFileError, match="overlap 17 is more than half"):
        container.unpack(_resealed(data))


def test_tile_grid_boxes_cover_the_image():
    grid = TileGrid(2500, 1100, 1024, 1024)
    assert (grid.columns, grid.rows, len(grid)) == (3, 2, 6)
    assert grid.box(0) == (0, 0, 1024, 1024)
    assert grid.box(5) == (2048, 1024, 2500, 1100)
    assert sum((r - l) * (b - t) for l, t, r, b in map(grid.box, range(6))) == 2500 * 1100


def test_header_is_little_endian_and_versioned():
    data = sample_file()
    assert data[:8] == container.MAGIC
    assert struct.unpack_from("<H", data, 8)[0] == container.VERSION


@pytest.mark.parametrize("data", [b"", b"\x89AE", b"GIF89a....", b"\x00" * 100])
def test_not_an_aec_file(data):
    with pytest.raises(CorruptFileError, match="not an .aec file"):
        container.unpack(data)


@pytest.mark.parametrize("version", container.READABLE_VERSIONS)
def test_every_truncation_is_detected(version):
    data = sample_file(version)
    for cut in range(len(data)):
        with pytest.raises(CorruptFileError):
            container.unpack(data[:cut])


def test_every_single_bit_flip_is_detected_by_the_parser():
    """Version 3 covers every byte with a CRC: header, directory (tags, tiles,
    lengths) and payloads."""
    data = sample_file()
    for pos in range(len(data)):
        for bit in range(8):
            damaged = bytearray(data)
            damaged[pos] ^= 1 << bit
            with pytest.raises(AecError):
                container.unpack(bytes(damaged))


def _directory_end(data: bytes) -> int:
    _, pos, n = container.parse_header(data)
    return pos + 4 + 16 * n + 4


def test_chunk_crc_mismatch_names_the_chunk_and_tile():
    data = bytearray(sample_file())
    data[-1] ^= 0xFF  # last byte of the last payload: the iccp chunk
    with pytest.raises(CorruptFileError, match="CRC mismatch in chunk iccp: "):
        container.unpack(bytes(data))
    data = bytearray(sample_file())
    data[_directory_end(bytes(data)) + 4 + 8 + 1] ^= 1  # second tile's HYPR payload
    with pytest.raises(CorruptFileError, match="CRC mismatch in chunk HYPR of tile 1"):
        container.unpack(bytes(data))


def test_salvage_keeps_intact_chunks_and_lists_the_lost():
    data = bytearray(sample_file())
    data[_directory_end(bytes(data)) + 1] ^= 1  # first tile's HYPR payload
    parsed = container.unpack(bytes(data), salvage=True)
    assert [(c.tag, c.tile) for c in parsed.lost] == [(CHUNK_HYPER, 0)]
    assert parsed.tiles[1] == TILES[1]
    assert CHUNK_HYPER not in parsed.tiles[0]
    assert "chunk HYPR of tile 0 (CRC mismatch)" == str(parsed.lost[0])


def test_salvage_of_a_truncated_file_lists_what_is_missing():
    data = sample_file()
    parsed = container.unpack(data[:-10], salvage=True)
    assert {(c.tag, c.tile) for c in parsed.lost} == {
        (CHUNK_ICC, IMAGE_WIDE), (CHUNK_LATENT, 1)}
    assert parsed.tiles[0] == TILES[0]


def test_salvage_still_needs_an_intact_directory():
    data = bytearray(sample_file())
    data[_directory_end(bytes(data)) - 5] ^= 1
    with pytest.raises(CorruptFileError, match="directory CRC"):
        container.unpack(bytes(data), salvage=True)


def test_unknown_version_says_so():
    data = bytearray(sample_file())
    struct.pack_into("<H", data, 8, 99)
    with pytest.raises(AecError, match="version 99"):
        container.unpack(bytes(data))


@pytest.mark.parametrize("version", container.READABLE_VERSIONS)
def test_trailing_bytes_are_rejected(version):
    with pytest.raises(CorruptFileError, match="unexpected bytes"):
        container.unpack(sample_file(version) + b"x")


def _resealed(data: bytearray) -> bytes:
    """Recompute the header and directory CRCs after an edit (a crafted file)."""
    header_len = struct.unpack_from("<H", data, 10)[0]
    struct.pack_into("<I", data, header_len - 4, zlib.crc32(bytes(data[: header_len - 4])))
    (n,) = struct.unpack_from("<I", data, header_len)
    end = header_len + 4 + 16 * n
    if end + 4 <= len(data):
        struct.pack_into("<I", data, end, zlib.crc32(bytes(data[header_len:end])))
    return bytes(data)


def test_crafted_chunk_count_is_bounded_by_the_file_size():
    data = bytearray(sample_file())
    header_len = struct.unpack_from("<H", data, 10)[0]
    struct.pack_into("<I", data, header_len, 0xFFFFFFFF)
    with pytest.raises(CorruptFileError, match="truncated inside the chunk directory"):
        container.unpack(_resealed(data))


def test_crafted_tile_grid_larger_than_the_directory_is_refused():
    data = bytearray(sample_file())
    header_len = struct.unpack_from("<H", data, 10)[0]
    struct.pack_into("<HHH", data, header_len - 10, 1, 1, 0)  # 1x1 tiles: 561 of them
    with pytest.raises(CorruptFileError, match="5 chunks for 561 tiles"):
        container.unpack(_resealed(data))


def test_crafted_directory_errors_name_the_problem():
    data = bytearray(sample_file())
    header_len = struct.unpack_from("<H", data, 10)[0]
    entry = header_len + 4
    struct.pack_into("<I", data, entry + 4, 7)  # tile index 7 of 2
    with pytest.raises(CorruptFileError, match="tile 7 of 2"):
        container.unpack(_resealed(bytearray(data)))
    struct.pack_into("<4sI", data, entry, b"LATN", 0)  # LATN of tile 0 twice
    with pytest.raises(CorruptFileError, match="appears twice"):
        container.unpack(_resealed(bytearray(data)))
    struct.pack_into("<4sI", data, entry, b"XTRA", 0)
    with pytest.raises(CorruptFileError, match="unknown critical chunk XTRA of tile 0"):
        container.unpack(_resealed(bytearray(data)))


def test_unknown_ancillary_chunk_is_skipped():
    header = Header("aec-hp-ckbd", b"12345678", 33, 17, "RGB", 6000, tile_width=32,
                    tile_height=32)
    data = container.pack(header, [{**TILES[0], b"xtra": b"future"}, TILES[1]])
    assert container.unpack(data).tiles == TILES


def test_v2_unknown_chunks():
    def with_extra_chunk(tag: bytes) -> bytes:
        data = sample_file(2)
        _, header_len, n = container.parse_header(data)
        head = data[: header_len - 5] + bytes([n + 1])
        payload = b"future"
        extra = struct.pack("<4sII", tag, len(payload), zlib.crc32(payload)) + payload
        return head + struct.pack("<I", zlib.crc32(head)) + data[header_len:] + extra

    assert container.unpack(with_extra_chunk(b"xtra")).header.width == 33
    with pytest.raises(CorruptFileError, match="unknown critical chunk XTRA"):
        container.unpack(with_extra_chunk(b"XTRA"))


def test_quality_validation():
    with pytest.raises(AecError):
        to_stored(100.5)
    assert to_stored(33.333) == 3333
