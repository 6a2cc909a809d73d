"""After ``import neuralcodec``, Pillow opens and saves .aec files."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

import neuralcodec  # noqa: F401  (registers the plugin)
from neuralcodec.errors import CorruptFileError
from neuralcodec.metrics import psnr

from .helpers import photo_like

ORIENTATION = 0x0112


def test_save_and_open(tmp_path):
    rgb = photo_like(48, 40, seed=8)
    path = tmp_path / "x.aec"
    Image.fromarray(rgb, "RGB").save(path, quality=90)
    with Image.open(path) as im:
        assert im.format == "AEC"
        assert im.size == (48, 40) and im.mode == "RGB"
        assert im.info["quality"] == 90.0
        pixels = np.asarray(im)
    assert psnr(rgb, pixels) > 22


def test_plugin_keeps_alpha(tmp_path):
    im = Image.fromarray(photo_like(20, 20, seed=1), "RGB").convert("RGBA")
    alpha = np.arange(400, dtype=np.uint8).reshape(20, 20)
    im.putalpha(Image.fromarray(alpha, "L"))
    im.save(tmp_path / "a.aec")
    with Image.open(tmp_path / "a.aec") as back:
        assert back.mode == "RGBA"
        assert np.array_equal(np.asarray(back.getchannel("A")), alpha)


def test_header_only_open_is_lazy(tmp_path):
    """Opening reads the header only: size, mode and quality of a file whose payload is
    cut short are known at once, and the damage shows when the pixels are loaded."""
    Image.fromarray(photo_like(48, 40), "RGB").save(tmp_path / "l.aec", quality=10)
    whole = (tmp_path / "l.aec").read_bytes()
    header_length = struct.unpack_from("<H", whole, 10)[0]
    assert len(whole) > header_length  # the rest: directory and payloads
    (tmp_path / "cut.aec").write_bytes(whole[:header_length])
    with Image.open(tmp_path / "cut.aec") as im:
        assert (im.size, im.mode, im.info["quality"]) == ((48, 40), "RGB", 10.0)
        with pytest.raises(CorruptFileError):
            im.load()


def _oriented(tmp_path) -> Path:
    """An .aec file of a 40x24 image whose EXIF says 'rotate 90° to display'."""
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[0x010F] = "aec test camera"
    path = tmp_path / "o.aec"
    Image.fromarray(photo_like(40, 24, seed=2), "RGB").save(path, exif=exif)
    return path


def test_exif_is_known_at_open_so_exif_transpose_rotates(tmp_path):
    path = _oriented(tmp_path)
    with Image.open(path) as im:
        assert im.getexif()[ORIENTATION] == 6  # before load(); cached by Pillow
        assert ImageOps.exif_transpose(im).size == (24, 40)
    with Image.open(path) as im:
        ImageOps.exif_transpose(im, in_place=True)
        assert im.size == (24, 40) and ORIENTATION not in im.getexif()


def test_save_honours_a_bpp_target(tmp_path):
    im = Image.fromarray(photo_like(128, 96, seed=1), "RGB")
    im.save(tmp_path / "t.aec", bpp=0.3)
    im.save(tmp_path / "q.aec")
    assert 8 * (tmp_path / "t.aec").stat().st_size / (128 * 96) <= 0.3
    with Image.open(tmp_path / "t.aec") as target, Image.open(tmp_path / "q.aec") as plain:
        assert target.info["quality"] < plain.info["quality"] == 75


@pytest.mark.parametrize("keyword", [{"qualty": 50}, {"optimize": True}, {"dpi": (72, 72)},
                                     {"frame": 0}, {"device": "cpu"}])
def test_save_refuses_keywords_it_cannot_honour(tmp_path, keyword):
    im = Image.fromarray(photo_like(16, 16), "RGB")
    name = next(iter(keyword))
    with pytest.raises(ValueError, match=f"save\\(\\) keyword\\(s\\) {name};.* bpp,"):
        im.save(tmp_path / "x.aec", **keyword)
    assert not (tmp_path / "x.aec").exists()


def test_save_strips_and_replaces_metadata_on_request(tmp_path):
    with Image.open(_oriented(tmp_path)) as im:
        im.save(tmp_path / "kept.aec")
        im.save(tmp_path / "stripped.aec", strip=True)
        im.save(tmp_path / "none.aec", exif=None)
    with Image.open(tmp_path / "kept.aec") as kept:
        assert kept.getexif()[0x010F] == "aec test camera"
    with Image.open(tmp_path / "stripped.aec") as stripped:
        assert dict(stripped.getexif()) == {ORIENTATION: 6}
    with Image.open(tmp_path / "none.aec") as none:
        assert "exif" not in none.info and not none.getexif()
