"""Decoded latents must not depend on torch's thread count (table indices are exact)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from neuralcodec.families.hyperprior.model import rate_level

from .helpers import photo_like, torch_threads


def test_latents_identical_across_thread_counts(codec):
    im = Image.fromarray(photo_like(200, 136, seed=11), "RGB")
    with torch_threads(2):
        data = codec.encode(im, 70)
        _, two = codec.decode_latents(data)
    with torch_threads(1):
        _, one = codec.decode_latents(data)
    assert np.array_equal(one.y_symbols, two.y_symbols)
    assert np.array_equal(one.z_symbols, two.z_symbols)
    assert torch.equal(one.y_hat, two.y_hat)


def test_decoded_latents_equal_encoder_latents(codec):
    im = Image.fromarray(photo_like(100, 70, seed=12), "RGB")
    prepared = codec.prepare(im)
    coder = codec.coder()
    level = rate_level(30, coder.model.config.levels)
    y = coder.model.analysis(codec.padded_input(prepared, coder), torch.tensor([level]))
    _, encoded = coder.latent_codec(codec.format_version).compress(y, 3000)
    _, decoded = codec.decode_latents(codec.encode(im, 30))
    assert np.array_equal(encoded.y_symbols, decoded.y_symbols)
    assert np.array_equal(encoded.z_symbols, decoded.z_symbols)
