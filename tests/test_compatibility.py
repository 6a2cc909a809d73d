"""Files this release cannot decode say, in one line, what they need; files decode the
same whatever optional chunks they carry (README, "Compatibility")."""

from __future__ import annotations

import dataclasses
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neuralcodec import Codec, __version__
from neuralcodec.cli import run
from neuralcodec.format import container
from neuralcodec.format.inspect import describe

GOLDEN = Path(__file__).resolve().parent / "golden"
FILE = "rgb-q20.aec"  # a version-3 file of 0.1.0 (no need chunk)


def _repack(data: bytes, model: str | None = None, chunks: dict | None = None,
            tile_chunks: dict | None = None) -> bytes:
    """The same file with another model name, or with whole-image or tile-0 chunks
    added."""
    parsed = container.unpack(data)
    header = parsed.header if model is None else dataclasses.replace(parsed.header,
                                                                      model=model)
    tiles = [dict(t) for t in parsed.tiles]
    tiles[0].update(tile_chunks or {})
    return container.pack(header, tiles, {**parsed.chunks, **(chunks or {})})


def _need(major: int, minor: int, patch: int, shipped: bool) -> bytes:
    """A need chunk's payload as docs/bitstream.md lays it out."""
    return struct.pack("<HHHB", major, minor, patch, 1 if shipped else 0)


def _decode_error(tmp_path: Path, data: bytes, capsys) -> str:
    path = tmp_path / "x.aec"
    path.write_bytes(data)
    out = tmp_path / "x.png"
    capsys.readouterr()
    assert run(["decode", str(path), str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()
    return err.strip().removeprefix(f"aec: error: {path}: ")


def test_a_model_of_a_later_release_names_the_release(tmp_path, capsys):
    data = _repack((GOLDEN / FILE).read_bytes(), model="aec-hp-ckbd-2",
                   chunks={b"need": _need(0, 4, 0, shipped=True)})
    assert _decode_error(tmp_path, data, capsys) == (
        f"needs model 'aec-hp-ckbd-2' (fingerprint 3744217b10a0477d), which aec {__version__} "
        "does not have; it comes with aec 0.4.0 and later (pip install -U neuralcodec)")


def test_a_model_of_ones_own_is_named_as_such(tmp_path, capsys):
    data = _repack((GOLDEN / FILE).read_bytes(), model="my-model",
                   chunks={b"need": _need(0, 1, 0, shipped=False)})
    assert _decode_error(tmp_path, data, capsys) == (
        "needs model 'my-model' (fingerprint 3744217b10a0477d), which is not installed: not "
        "a model aec ships (a model of your own? put its folder in $AEC_MODEL_PATH)")


def test_an_unknown_model_in_a_file_without_a_need_chunk(tmp_path, capsys):
    data = _repack((GOLDEN / FILE).read_bytes(), model="aec-hp-ckbd-2")
    assert _decode_error(tmp_path, data, capsys) == (
        "needs model 'aec-hp-ckbd-2' (fingerprint 3744217b10a0477d), which is not "
        f"installed: not one aec {__version__} ships (from a later aec, or your own in "
        "$AEC_MODEL_PATH)")


def test_a_later_format_version_names_what_this_release_reads(tmp_path, capsys):
    data = bytearray((GOLDEN / FILE).read_bytes())
    data[8:10] = struct.pack("<H", 4)
    header_length = struct.unpack_from("<H", data, 10)[0]  # a valid header otherwise
    struct.pack_into("<I", data, header_length - 4,
                     zlib.crc32(bytes(data[: header_length - 4])))
    assert _decode_error(tmp_path, bytes(data), capsys) == (
        f"format version 4 needs a later aec ({__version__} reads versions 1-3)")


def test_a_later_familys_chunks_name_the_release_that_reads_them(tmp_path, capsys):
    """A critical chunk this release does not know (a later model family's) in a file
    whose need chunk asks for a later aec says so; without that, it is damage."""
    data = (GOLDEN / FILE).read_bytes()
    later = _repack(data, chunks={b"need": _need(9, 1, 0, shipped=True)},
                    tile_chunks={b"ZZZZ": b"later"})
    assert _decode_error(tmp_path, later, capsys) == (
        f"needs aec 9.1.0 or later (its chunk ZZZZ of tile 0 is unknown to aec "
        f"{__version__}; pip install -U neuralcodec)")
    damaged = _repack(data, tile_chunks={b"ZZZZ": b"later"})
    assert _decode_error(tmp_path, damaged, capsys) == "unknown critical chunk ZZZZ of tile 0"


def test_unknown_ancillary_chunks_change_nothing(tmp_path):
    """Readers skip chunks they do not know whose tag starts in lower case, whole-image
    or in a tile, so later releases can add optional chunks (as 0.2.0 added need)."""
    codec = Codec(device="cpu", workers=1)
    data = (GOLDEN / FILE).read_bytes()
    extended = _repack(data, chunks={b"zzzz": b"later", b"need": _need(9, 9, 9, True)},
                       tile_chunks={b"tilx": b"more"})
    assert len(extended) > len(data)
    assert np.array_equal(np.asarray(codec.decode(extended)), np.asarray(codec.decode(data)))


def test_files_of_this_release_carry_the_version_that_decodes_them(tmp_path):
    image = Image.fromarray(np.full((20, 30, 3), 90, np.uint8))
    data = Codec(device="cpu", workers=1).encode(image, 50)
    assert container.unpack(data).chunks[b"need"] == _need(0, 1, 0, shipped=True)
    assert describe(data)["needs"] == "aec 0.1.0"  # what aec info shows
    untiled = Codec(device="cpu", workers=1, format_version=2).encode(image, 50)
    assert container.unpack(untiled).chunks == {}  # versions 1 and 2 have no place for it


@pytest.mark.parametrize("name", ["rgb-q20.aec", "aec-vq-tiles-rgba-q75.aec"])
def test_adding_the_need_chunk_leaves_decoding_unchanged(name):
    codec = Codec(device="cpu", workers=1)
    data = (GOLDEN / name).read_bytes()
    with_need = _repack(data, chunks={b"need": _need(0, 1, 0, shipped=True)})
    assert np.array_equal(np.asarray(codec.decode(with_need)), np.asarray(codec.decode(data)))


def test_the_changelog_starts_with_this_version(capsys):
    changelog = (Path(__file__).resolve().parent.parent / "CHANGELOG.md").read_text()
    first = next(line for line in changelog.splitlines() if line.startswith("## "))
    assert first == f"## {__version__}"
    capsys.readouterr()
    assert run(["--version"]) == 0
    assert capsys.readouterr().out == f"aec, version {__version__}\n"
