"""Encode/decode roundtrips through the Python API: modes, sizes, quality behaviour."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import neuralcodec
from neuralcodec.errors import AecWarning
from neuralcodec.metrics import psnr

from .helpers import photo_like


@pytest.mark.parametrize(
    "make, expected_mode",
    [
        (lambda rgb: Image.fromarray(rgb, "RGB").convert("P"), "RGB"),
        (lambda rgb: Image.fromarray(rgb, "RGB").convert("1"), "L"),
        (lambda rgb: Image.fromarray(rgb, "RGB").convert("CMYK"), "RGB"),
        (lambda rgb: Image.fromarray(rgb[..., 0].astype(np.uint16) * 257), "L"),
    ],
)
def test_other_modes_are_converted_with_a_notice(codec, make, expected_mode):
    im = make(photo_like(32, 32, seed=5))
    with pytest.warns(AecWarning, match="converted|reduced"):
        data = codec.encode(im, quality=60)
    assert codec.decode(data).mode == expected_mode


def test_sixteen_bit_keeps_the_high_byte(codec):
    rgb = photo_like(64, 64, seed=9)
    im16 = Image.fromarray(rgb[..., 1].astype(np.uint16) * 257)
    assert im16.mode == "I;16"
    out = codec.decode(codec.encode(im16, quality=95))
    assert psnr(rgb[..., 1], np.asarray(out)) > 22


def test_quality_trades_size_for_fidelity(codec):
    sample = Image.open(Path(neuralcodec.__file__).parent / "samples" / "kodim23.png")
    crop = sample.convert("RGB").crop((200, 100, 456, 356))
    results = []
    for q in (0, 50, 100):
        data = codec.encode(crop, quality=q)
        out = codec.decode(data)
        results.append((len(data), psnr(np.asarray(crop), np.asarray(out))))
    sizes = [r[0] for r in results]
    quality = [r[1] for r in results]
    assert sizes[0] < sizes[1] < sizes[2]
    assert quality[0] < quality[1] < quality[2]


def test_module_level_api_and_paths(tmp_path, rgb_image):
    path = tmp_path / "in.png"
    rgb_image.save(path)
    data = neuralcodec.encode(path, quality=40)
    assert data[:4] == b"\x89AEC"
    out = neuralcodec.decode(data)
    assert out.size == rgb_image.size


def test_quality_out_of_range_is_an_error(codec, rgb_image):
    with pytest.raises(neuralcodec.AecError, match="quality"):
        codec.encode(rgb_image, 101)


def test_pixel_limit(rgb_image):
    small = neuralcodec.Codec(device="cpu", max_pixels=100)
    with pytest.raises(neuralcodec.AecError, match="limit"):
        small.encode(rgb_image, 50)
