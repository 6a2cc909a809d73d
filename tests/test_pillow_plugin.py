"""After ``import neuralcodec``, Pillow opens and saves .aec files."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from PIL import Image

import neuralcodec  # noqa: F401  (registers the plugin)
from neuralcodec.errors import CorruptFileError
from neuralcodec.metrics import psnr

from .helpers import photo_like


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
