"""Decoded latents must not depend on the thread count or on which coder (NumPy or
torch) decodes them (table indices are exact)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from .helpers import (
    assert_numpy_and_torch_coders_agree,
    photo_like,
    rate_point,
    threads,
    torch_coder,
)


def test_latents_identical_across_thread_counts(codec):
    im = Image.fromarray(photo_like(200, 136, seed=11), "RGB")
    with threads(2):
        data = codec.encode(im, 70)
        _, two = codec.decode_latents(data)
    with threads(1):
        _, one = codec.decode_latents(data)
        same = codec.encode(im, 70)
    assert same == data
    assert np.array_equal(one.y_symbols, two.y_symbols)
    assert np.array_equal(one.z_symbols, two.z_symbols)
    assert np.array_equal(one.y_hat, two.y_hat)


def test_decoded_latents_equal_encoder_latents(codec):
    im = Image.fromarray(photo_like(100, 70, seed=12), "RGB")
    coder = codec.coder()
    features = coder.analyse(codec.padded_input(codec.prepare(im), coder))
    point = rate_point(3000)
    level = point.level(coder.config.levels)
    y = coder.transforms.latents(features, level)
    z_sym = coder.latent_codec.z_symbols(coder.transforms.hyper_analyse(y, level))
    _, encoded = coder.latent_codec.compress(y, point, z_sym)
    _, decoded = codec.decode_latents(codec.encode(im, 30))
    assert np.array_equal(encoded.y_symbols, decoded.y_symbols)
    assert np.array_equal(encoded.z_symbols, decoded.z_symbols)


def test_the_numpy_and_torch_coders_decode_the_same_latents_and_pixels(codec):
    """The CPU codes on NumPy; torch (CUDA, effort, training) must read its files to the
    very same latents, and its pixels agree but for float rounding."""
    im = Image.fromarray(photo_like(130, 90, seed=13), "RGB")
    assert_numpy_and_torch_coders_agree(codec, torch_coder(), codec.encode(im, 55), 5500)
