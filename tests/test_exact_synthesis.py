"""The exact synthesis transform: the same pixels for any thread count and backend, close
to the float ``g_s``, exact at its bounds."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neuralcodec.codec.codec import rate_point
from neuralcodec.families import numpy_layers
from neuralcodec.families.base import RatePoint
from neuralcodec.families.hyperprior import exact_synthesis as es
from neuralcodec.families.hyperprior.stored_arrays import read_arrays
from neuralcodec.format.quality import to_stored

from .helpers import photo_like, threads

GOLDEN = Path(__file__).parent / "golden"
QUALITIES = (0, 37.5, 100)
# SHA-256 of the exact pixels of tests/golden/rgb-q20.aec (64 x 64, quality 20): what
# every machine must decode it to. Changing the exact arithmetic changes it (and the
# pixels of every file that relies on it).
GOLDEN_PIXELS = "7439864bacfa4dd18b2e9ed5bd62850a5d4fdb0f325207fc5b1f7365866a029b"


@pytest.fixture(scope="module")
def exact(codec) -> es.ExactSynthesis:
    return es.ExactSynthesis.of_model(codec.coder().info)


@pytest.fixture(scope="module")
def decoded(codec) -> dict:
    """Decoded latents of small images at several qualities: {(seed, q): (latents, point,
    original)}."""
    out = {}
    for seed, (w, h) in ((1, (96, 64)), (2, (80, 72))):
        image = photo_like(w, h, seed=seed)
        for q in QUALITIES:
            header, latents = codec.decode_latents(codec.encode(Image.fromarray(image), q))
            out[seed, q] = latents, rate_point(header.quality), image
    return out


def test_same_pixels_on_1_and_2_threads(exact, decoded):
    """(Each thread has its own scratch buffers: shared ones would race here.)"""
    try:
        for latents, point, _ in decoded.values():
            with threads(1):
                numpy_layers.set_threads(1)
                one = exact(latents.y_hat, point)
            with threads(2):
                numpy_layers.set_threads(2)
                two = exact(latents.y_hat, point)
            assert one.dtype == np.uint8 and one.shape[2] == 3
            assert np.array_equal(one, two)
    finally:
        numpy_layers.set_threads(None)


def test_numpy_and_torch_give_the_same_pixels(exact, decoded):
    from neuralcodec.families.hyperprior.exact_synthesis_torch import TorchExactSynthesis

    twin = TorchExactSynthesis(exact.params)
    for latents, point, _ in decoded.values():
        assert np.array_equal(exact(latents.y_hat, point), twin(latents.y_hat, point))


def test_extreme_latents_stay_exact_and_agree_across_backends(exact):
    """Latents far outside anything an encoder writes hit every clamp; the arithmetic
    stays within its bounds, so both backends still agree bit for bit."""
    from neuralcodec.families.hyperprior.exact_synthesis_torch import TorchExactSynthesis

    rng = np.random.default_rng(5)
    y = rng.choice([-1e7, -300.0, -7.5, 0.0, 3.25, 250.0, 1e9], size=(3, 4, 192))
    point = RatePoint(1, 1, 1.0)
    a = exact(y, point)
    assert np.array_equal(a, TorchExactSynthesis(exact.params)(y, point))
    assert a.min() == 0 and a.max() == 255


def test_close_to_the_float_synthesis(codec, exact, decoded):
    """Within one level of the float g_s everywhere, on under 2 % of the values, at the
    same PSNR to 0.01 dB (measured on Kodak: benchmarks/exact_synthesis.py)."""
    coder = codec.coder()
    for latents, point, image in decoded.values():
        h, w = image.shape[:2]
        float_pixels = np.round(np.clip(coder.synthesize(latents, point), 0, 1)
                                * np.float32(255)).astype(np.int64)[:h, :w]
        exact_pixels = exact(latents.y_hat, point)[:h, :w].astype(np.int64)
        difference = np.abs(float_pixels - exact_pixels)
        assert difference.max() <= 1
        assert (difference > 0).mean() < 0.02
        mse_float = np.mean((float_pixels - image) ** 2)
        mse_exact = np.mean((exact_pixels - image) ** 2)
        assert abs(10 * math.log10(mse_float / mse_exact)) < 0.01


def test_a_golden_file_decodes_to_the_recorded_exact_pixels(codec, exact):
    header, latents = codec.decode_latents((GOLDEN / "rgb-q20.aec").read_bytes())
    pixels = exact(latents.y_hat, rate_point(header.quality))
    assert hashlib.sha256(pixels.tobytes()).hexdigest() == GOLDEN_PIXELS


def test_every_step_stays_below_2_to_the_53(exact):
    bounds = exact.params.bounds()
    assert {"input", "g_s.0", "g_s.1", "g_s.6", "pixels"} <= set(bounds)
    assert max(max(b.values()) for b in bounds.values()) < 2.0**53
    assert max(b.get("norm", 0.0) for b in bounds.values()) < es.SQRT_LIMIT


def test_weights_beyond_the_exact_range_are_refused(codec):
    state, _, _ = read_arrays(codec.coder().info)
    state = dict(state)
    state["g_s.2.weight"] = state["g_s.2.weight"].astype(np.float32) * np.float32(1e6)
    with pytest.raises(ValueError):
        es.ExactSynthesis.from_state(state, 128, 192)


def test_integer_sqrt_does_not_depend_on_how_sqrt_rounds(monkeypatch):
    n = np.array([0, 1, 2, 3, 4, 15, 16, 17, (2**25 - 1) ** 2 - 1, (2**25 - 1) ** 2,
                  (2**25 - 1) ** 2 + 1, 2**50 - 1, 123456789012345], dtype=np.float64)
    expected = [math.isqrt(int(v)) for v in n]
    assert es.integer_sqrt(n.copy()).tolist() == expected
    true_sqrt = np.sqrt
    for error in (1 + 2.0**-30, 1 - 2.0**-30):  # a sloppy sqrt, off either way
        monkeypatch.setattr(np, "sqrt", lambda x, out=None, e=error:
                            np.multiply(true_sqrt(x), e, out=out))
        assert es.integer_sqrt(n.copy()).tolist() == expected


def test_level_gains_are_the_float_gains_on_their_grid(exact):
    """Decimal gains: at a trained level, round(exp(log_gain) * 2**16); between levels
    within a unit of the grid of the geometric interpolation the float transforms use."""
    logs = exact.params.log_gain.astype(np.float64)
    levels = logs.shape[0]
    for q in (0, 20, 37.5, 61.3, 100):
        point = rate_point(to_stored(q))
        gains = es.level_gains(exact.params.log_gain, point)
        assert np.array_equal(gains, np.round(gains))
        lo, t = point.level_parts(levels)
        frac = t / point.denominator
        reference = np.exp((1 - frac) * logs[lo] + frac * logs[lo + 1]) * 2**es.GAIN_BITS
        assert np.abs(gains - reference).max() <= 0.5 + 1e-6
        if t == 0:
            assert np.array_equal(gains, np.round(np.exp(logs[lo]) * 2**es.GAIN_BITS))

