"""After ``import neuralcodec``, Pillow opens and saves .aec files."""

from __future__ import annotations

import numpy as np
from PIL import Image

import neuralcodec  # noqa: F401  (registers the plugin)
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
    Image.fromarray(photo_like(16, 16), "RGB").save(tmp_path / "l.aec", quality=10)
    with Image.open(tmp_path / "l.aec") as im:
        assert im.size == (16, 16)
        assert im._aec_start is not None  # nothing read or decoded yet
