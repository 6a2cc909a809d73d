"""The family contract, checked for every registered model family through its shipped
model (a family without one yet, channel-context, through a model warm-started from
aec-hp-ckbd): round trips at odd sizes and in every native mode, rate and fidelity that
follow the quality, identical bytes and pixels whatever the thread count, the rate
search, and chunks that the family declared. The overfitted family, which fits every
image (minutes each), has its own tests of the same things on short fits
(tests/test_overfitted_family.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from neuralcodec import Codec
from neuralcodec.families.base import families
from neuralcodec.families.zoo import available_models
from neuralcodec.format import container
from neuralcodec.format.chunks import CHUNK_ALPHA
from neuralcodec.metrics import psnr

from .helpers import channel_context_model, photo_like, threads


def _model_of(family: str) -> str:
    names = sorted(m.name for m in available_models() if m.family == family)
    assert names, f"no installed model of the registered family {family}"
    return names[0]


OVERFITTED = "overfitted"  # tested in test_overfitted_family.py
FAMILIES = sorted(f.name for f in families() if f.name != OVERFITTED)


# Families that ship no model yet: a test model is made for them.
UNSHIPPED = {"hyperprior-channel-checkerboard": channel_context_model}


@pytest.fixture(scope="module", params=FAMILIES)
def codec(request, tmp_path_factory) -> Codec:
    torch.set_num_threads(2)
    if request.param not in UNSHIPPED:
        yield Codec(model=_model_of(request.param), device="cpu").load()
        return
    directory = tmp_path_factory.mktemp("models")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AEC_MODEL_PATH", str(directory))
        name = UNSHIPPED[request.param](directory)
        yield Codec(model=name, device="cpu").load()


def test_every_builtin_family_is_registered():
    assert sorted(f.name for f in families()) == [
        "hyperprior-channel-checkerboard", "hyperprior-checkerboard", OVERFITTED, "vq-vae"]


@pytest.mark.parametrize("size", [(1, 1), (17, 33), (65, 47)])
def test_odd_sizes_roundtrip(codec, size):
    im = Image.fromarray(photo_like(*size, seed=size[0]), "RGB")
    out = codec.decode(codec.encode(im, 75))
    assert out.size == size and out.mode == "RGB"


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_native_modes_keep_mode_and_alpha_exactly(codec, mode):
    im = Image.fromarray(photo_like(40, 24, seed=3), "RGB").convert(mode)
    if "A" in mode:
        alpha = np.random.default_rng(1).integers(0, 256, (24, 40), dtype=np.uint8)
        im.putalpha(Image.fromarray(alpha, "L"))
    out = codec.decode(codec.encode(im, 80))
    assert out.mode == mode
    if "A" in mode:
        assert out.getchannel("A").tobytes() == im.getchannel("A").tobytes()


def test_quality_trades_size_for_fidelity(codec):
    im = Image.fromarray(photo_like(96, 64, seed=5), "RGB")
    sizes, scores = [], []
    for q in (0, 50, 100):
        data = codec.encode(im, q)
        sizes.append(len(data))
        scores.append(psnr(np.asarray(im), np.asarray(codec.decode(data))))
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    assert scores[-1] > scores[0] and scores[-1] > 22


def test_same_bytes_and_pixels_whatever_the_thread_count(codec):
    im = Image.fromarray(photo_like(120, 72, seed=9), "RGB")
    with threads(1):
        one = codec.encode(im, 70)
        pixels_one = np.asarray(codec.decode(one), np.int16)
    with threads(2):
        two = codec.encode(im, 70)
        pixels_two = np.asarray(codec.decode(one), np.int16)
    assert one == two
    # The decoded latents are exact; the float synthesis is not: oneDNN may split a
    # convolution's sums differently by thread count (seen for aec-vq on an AMX CPU:
    # 1e-6 apart, one pixel rounded the other way). So pixels agree to one level.
    assert np.abs(pixels_one - pixels_two).max() <= 1


def test_bpp_search_meets_the_target(codec):
    im = Image.fromarray(photo_like(128, 96, seed=2), "RGB")
    pixels = 128 * 96
    top = 8 * len(codec.encode(im, 100)) / pixels
    bottom = 8 * len(codec.encode(im, 0)) / pixels
    target = (top + bottom) / 2
    data, q = codec.encode_to_target(im, bpp=target)
    assert 8 * len(data) / pixels <= target and 0 < q < 100
    # The next step up in quality would overshoot: the search did not stop early.
    assert 8 * len(codec.encode(im, min(100, q + 2))) / pixels > target * 0.97


def test_writes_only_the_chunks_its_family_declared(codec):
    im = Image.fromarray(photo_like(40, 24, seed=4), "RGB").convert("RGBA")
    parsed = container.unpack(codec.encode(im, 60))
    declared = set(_family_of(codec).chunks) | {CHUNK_ALPHA}
    for tile in parsed.tiles:
        assert CHUNK_ALPHA in tile and set(tile) <= declared
    assert codec.coder().pad_multiple == _family_of(codec).pad_multiple


def _family_of(codec: Codec):
    from neuralcodec.families.base import get_family

    return get_family(codec.coder().card["family"])


def test_one_coder_class_per_family_whatever_the_backend(codec):
    """A family's coder is written once over a transforms backend: on NumPy and on torch
    it is the same class, with the same latent codec class, and it makes the same file
    (the bits come from the exact parameter path; the float transforms agree here)."""
    from neuralcodec.families.zoo import load_coder

    name = codec.model_name
    coder = codec.coder()
    backends = ["torch"] if coder.family.name == "vq-vae" else ["numpy", "torch"]
    coders = [load_coder(name, "cpu", backend) for backend in backends]
    assert {type(c) for c in coders} == {type(coder)}
    if len(coders) == 2:
        assert [c.transforms.backend for c in coders] == backends
        assert type(coders[0].latent_codec) is type(coders[1].latent_codec)


def test_a_rate_point_has_one_level_in_floats_and_integers():
    """The float transforms' level and the exact path's integer interpolation are one
    value: lo + t / denominator, at every stored quality and level count."""
    from neuralcodec.codec.codec import rate_point
    from neuralcodec.format.quality import STORED_MAX

    for levels in (2, 9, 10, 16):
        for stored in range(0, STORED_MAX + 1, 7):
            point = rate_point(stored)
            lo, t = point.level_parts(levels)
            assert 0 <= lo <= levels - 2 and 0 <= t <= point.denominator
            assert abs(lo + t / point.denominator - point.level(levels)) < 1e-12
        assert rate_point(STORED_MAX).level(levels) == levels - 1
