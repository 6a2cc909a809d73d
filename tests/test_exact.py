"""The integer entropy-parameter path: exact on any machine, settings or float noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from neuralcodec import Codec
from neuralcodec.families.hyperprior.integer_net import ACT_LIMIT, WEIGHT_BITS, quantize_layer
from neuralcodec.families.specs import Conv
from neuralcodec.format import container

from .helpers import decode_latents_with, photo_like, threads, torch_coder


def _image() -> Image.Image:
    return Image.fromarray(photo_like(160, 120, seed=21), "RGB")


def test_latents_identical_across_threads_onednn_and_default_dtype(codec):
    """(a) encode on NumPy, 2 threads; decode in torch: 1 thread, oneDNN off, float64
    default."""
    with threads(2):
        data = codec.encode(_image(), 65)
        _, reference = codec.decode_latents(data)
    dtype = torch.get_default_dtype()
    try:
        torch.set_default_dtype(torch.float64)
        with threads(1), torch.backends.mkldnn.flags(enabled=False):
            other = decode_latents_with(torch_coder(), data)
    finally:
        torch.set_default_dtype(dtype)
    assert np.array_equal(reference.y_symbols, other.y_symbols)
    assert np.array_equal(reference.z_symbols, other.z_symbols)
    assert np.array_equal(reference.y_hat, other.y_hat)


def test_noise_in_the_float_transforms_leaves_decoded_symbols_unchanged(codec):
    """(b) the symbols depend only on the integer path, not on g_a / g_s arithmetic."""
    data = codec.encode(_image(), 40)
    _, clean = codec.decode_latents(data)
    noisy = torch_coder()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in (noisy.transforms.model.g_a, noisy.transforms.model.g_s):
            for p in module.parameters():
                p.add_(1e-4 * p.abs().mean() * torch.randn(p.shape, generator=generator))
    decoded = decode_latents_with(noisy, data)
    assert np.array_equal(clean.y_symbols, decoded.y_symbols)
    assert np.array_equal(clean.y_hat, decoded.y_hat)


@pytest.mark.parametrize("transposed", [False, True])
def test_integer_layer_is_exact_at_its_bounds(transposed):
    """float64 arithmetic on integer tensors equals an int64 reference, even with inputs
    at the activation limit and weights at full scale."""
    torch.manual_seed(0)
    conv = (nn.ConvTranspose2d(24, 8, 5, 2, 2, 1) if transposed else nn.Conv2d(24, 8, 5, 1, 2))
    with torch.no_grad():
        conv.weight.uniform_(-1, 1)
        conv.bias.uniform_(-3, 3)
    layer = quantize_layer(Conv(24, 8, 5, 2 if transposed else 1, transposed),
                           conv.weight.detach().double().numpy(),
                           conv.bias.detach().double().numpy(), leaky=False)
    assert np.abs(layer.weight).max() <= 2**WEIGHT_BITS
    a = torch.randint(-int(ACT_LIMIT), int(ACT_LIMIT) + 1, (1, 24, 9, 7)).double()
    a[0, :, 0, 0] = ACT_LIMIT
    got = torch.from_numpy(layer(a[0].permute(1, 2, 0).numpy().copy())).permute(2, 0, 1)[None]
    # int64 reference: the convolution as explicit sums of integer products.
    a_int, w = a.long()[0], torch.from_numpy(layer.weight).long()
    if transposed:
        full = torch.zeros(8, 2 * 9 + 3, 2 * 7 + 3, dtype=torch.int64)
        for ky in range(5):
            for kx in range(5):
                full[:, ky:ky + 17:2, kx:kx + 13:2] += torch.einsum(
                    "ihw,io->ohw", a_int, w[:, :, ky, kx])
        acc = full[:, 2:20, 2:16].unsqueeze(0)
    else:
        cols = F.unfold(a, 5, padding=2).long()[0]  # (24*25, 9*7)
        acc = (w.view(8, -1) @ cols).view(1, 8, 9, 7)
    acc = acc + torch.from_numpy(layer.bias).long().view(1, -1, 1, 1)
    expected = torch.div(acc, 2**layer.shift, rounding_mode="floor")
    expected = expected.clamp(-int(ACT_LIMIT), int(ACT_LIMIT)).double()
    assert got.shape == expected.shape
    assert torch.equal(got, expected)


def test_version_1_files_still_decode(codec, rgb_image):
    old = Codec(device="cpu", format_version=1)
    data = old.encode(rgb_image, 50)
    assert data[8] == 1
    out = codec.decode(data)
    assert out.size == rgb_image.size


def test_integer_and_float_paths_cost_about_the_same(codec):
    im = Image.open(_sample_path()).convert("RGB").crop((0, 0, 256, 256))
    # The coded latents only: a version-3 file also carries container chunks (need,
    # exsy, the tile grid) that version 1 has not, 65 bytes beside 2.7 kB here.
    def coded(data: bytes) -> int:
        return sum(len(v) for tile in container.unpack(data).tiles for v in tile.values())

    v2 = coded(codec.encode(im, 50))
    v1 = coded(Codec(device="cpu", format_version=1).encode(im, 50))
    assert abs(v2 - v1) / v1 < 0.02


def _sample_path():
    from pathlib import Path

    import neuralcodec

    return Path(neuralcodec.__file__).parent / "samples" / "kodim23.png"


def test_shipped_weights_keep_activations_far_inside_the_clamp(codec):
    """Files of today's format run through the calibrated integer path, and the shipped
    weights use a small part of its range (a clamped activation would cost rate)."""
    path = codec.coder().latent_codec.path
    path.peaks = {}
    try:
        for q in (0, 100):
            codec.decode_latents(codec.encode(_image(), q))
        assert path.peaks and {"h_s[0]", "entropy_parameters[2]", "context[0]"} <= set(path.peaks)
        assert max(path.peaks.values()) < 0.5 * ACT_LIMIT
    finally:
        path.peaks = None
