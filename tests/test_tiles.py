"""Tiled coding (format version 3): independent tiles, worker processes, limits, damage."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from PIL import Image

from neuralcodec import Codec
from neuralcodec.cli import run
from neuralcodec.errors import AecError, CorruptFileError
from neuralcodec.families.hyperprior import CHUNK_HYPER, CHUNK_LATENT
from neuralcodec.format import container
from neuralcodec.format.grid import TileGrid
from neuralcodec.metrics import psnr

from .helpers import photo_like


@pytest.fixture(scope="module")
def tiled() -> Codec:
    return Codec(device="cpu", tile_size=64, workers=1)


@pytest.fixture(scope="module")
def rgba() -> Image.Image:
    im = Image.fromarray(photo_like(150, 100, seed=4), "RGB")
    alpha = np.random.default_rng(2).integers(0, 256, (100, 150), dtype=np.uint8)
    im.putalpha(Image.fromarray(alpha, "L"))
    return im


def test_tiles_roundtrip_with_exact_alpha(tiled, rgba):
    data = tiled.encode(rgba, 75)
    header = container.unpack(data).header
    assert (header.version, header.tile_width, len(header.grid)) == (3, 64, 6)
    out = tiled.decode(data)
    assert out.mode == "RGBA" and out.size == rgba.size
    assert np.array_equal(np.asarray(out)[..., 3], np.asarray(rgba)[..., 3])
    assert psnr(np.asarray(rgba)[..., :3], np.asarray(out)[..., :3]) > 22


def test_small_images_stay_one_tile_with_unchanged_streams(codec, rgb_image):
    """An image within one tile codes the same latent streams as format version 2."""
    v3 = container.unpack(codec.encode(rgb_image, 60))
    v2 = container.unpack(Codec(device="cpu", format_version=2).encode(rgb_image, 60))
    assert len(v3.header.grid) == 1
    assert v3.tiles == v2.tiles


def test_worker_processes_write_the_same_bytes(tiled, rgba):
    parallel = Codec(device="cpu", tile_size=64, workers=2)
    try:
        data = parallel.encode(rgba, 50)
        assert data == tiled.encode(rgba, 50)
        out = np.asarray(parallel.decode(data)).astype(int)
    finally:
        parallel.close()
    # The synthesis is float math: thread counts may move a rounding by one level.
    assert np.abs(out - np.asarray(tiled.decode(data))).max() <= 1


def test_progress_is_reported_per_tile(tiled, rgba):
    seen = []
    tiled.decode(tiled.encode(rgba, 30), progress=lambda done, total: seen.append((done, total)))
    assert seen == [(i, 6) for i in range(1, 7)]


def _damage_payload(data: bytes, tile: int, tag: bytes) -> bytes:
    """Flip one byte in the payload of (tag, tile)."""
    _, pos, n = container.parse_header(data)
    offset = pos + 4 + 16 * n + 4
    for k in range(n):
        entry_tag, entry_tile, length, _ = struct.unpack_from("<4sIII", data, pos + 4 + 16 * k)
        if (entry_tag, entry_tile) == (tag, tile):
            damaged = bytearray(data)
            damaged[offset + length // 2] ^= 0x40
            return bytes(damaged)
        offset += length
    raise AssertionError("no such chunk")


def test_damaged_tile_fails_naming_it_or_is_reported_lost(tiled, rgba):
    data = tiled.encode(rgba, 75)
    damaged = _damage_payload(data, 4, CHUNK_LATENT)
    with pytest.raises(CorruptFileError, match="CRC mismatch in chunk LATN of tile 4"):
        tiled.decode(damaged)
    image, report = tiled.decode_partial(damaged)
    assert report.lost_tiles == [4] and "chunk LATN of tile 4" in str(report)
    intact, got = np.asarray(tiled.decode(data)), np.asarray(image)
    grid = container.unpack(data).header.grid
    m = grid.overlap
    assert m > 0
    left, top, right, bottom = grid.coded_box(4)  # all that tile 4 would have touched
    untouched = np.ones(got.shape[:2], bool)
    untouched[top:bottom, left:right] = False
    assert np.array_equal(got[untouched], intact[untouched])
    left, top, right, bottom = grid.box(4)  # neighbours fade into it over m pixels
    assert (got[top + m:bottom - m, left + m:right - m, :3] == 128).all()


def test_truncated_file_decodes_partially(tiled, rgba):
    data = tiled.encode(rgba, 75)
    image, report = tiled.decode_partial(data[: len(data) * 2 // 3])
    assert 0 < len(report.lost_tiles) < 6 and image.size == rgba.size


def test_partial_decode_on_the_command_line(tmp_path, tiled, rgba, capsys):
    src = tmp_path / "a.aec"
    src.write_bytes(_damage_payload(tiled.encode(rgba, 75), 1, CHUNK_HYPER))
    out = tmp_path / "a.png"
    assert run(["decode", str(src), str(out)]) == 1
    assert "chunk HYPR of tile 1" in capsys.readouterr().err and not out.exists()
    assert run(["decode", "--partial", str(src), str(out)]) == 0
    assert "1 of 6 tiles lost" in capsys.readouterr().err and out.exists()


def test_tile_size_flag(tmp_path, capsys):
    src = tmp_path / "in.png"
    Image.fromarray(photo_like(130, 70, seed=1), "RGB").save(src)
    assert run(["encode", "--tile-size", "100", str(src), str(tmp_path / "o.aec")]) == 0
    header = container.unpack((tmp_path / "o.aec").read_bytes()).header
    assert (header.tile_width, header.tile_overlap, len(header.grid)) == (100, 8, 2)
    assert run(["encode", "--tile-size", "32", str(src), str(tmp_path / "p.aec")]) == 2


def test_overlap_cross_fades_neighbours():
    grid = TileGrid(300, 100, 100, 100, overlap=8)
    assert grid.coded_box(1) == (92, 0, 208, 100)
    from neuralcodec.codec.tiles import blend_mask

    assert blend_mask(grid, 0) is None
    weights = np.asarray(blend_mask(grid, 1))
    assert weights.shape == (100, 116)
    assert weights[0, 0] < 10 and weights[0, 15] > 245 and (weights[:, 16:] == 255).all()
    assert np.all(np.diff(weights[0, :16].astype(int)) > 0)


def test_limits_are_checked_from_the_header(tiled, rgba):
    data = tiled.encode(rgba, 75)
    with pytest.raises(AecError, match="above the limit of 1000"):
        Codec(device="cpu", max_pixels=1000).decode(data)
    with pytest.raises(AecError, match="above the limit of 1000") as error:
        Codec(device="cpu", max_tile_pixels=1000).decode(data)
    assert error.value.field == "max_tile_pixels"  # the library names its field
    legacy = Codec(device="cpu", format_version=2).encode(rgba, 75)
    with pytest.raises(AecError, match="untiled image of 15000 pixels"):
        Codec(device="cpu", max_tile_pixels=10_000).decode(legacy)


def test_input_image_size_is_checked_before_its_pixels_are_read(tmp_path):
    """A PNG whose header claims 60000x60000 pixels is refused from the header alone."""
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    path = tmp_path / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    with pytest.raises(AecError, match="60000x60000 = 3600000000 pixels, above the limit"):
        Codec(device="cpu").encode(path)
