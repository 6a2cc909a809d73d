"""Tests for neuralcodec.metrics (synthetic data only; no datasets needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neuralcodec.metrics import bd_psnr, bd_rate, bpp, psnr

# A plausible, slightly curved RD curve: (bpp, PSNR dB).
RATE = np.array([0.15, 0.3, 0.55, 0.9, 1.4, 2.1])
DIST = np.array([27.0, 29.6, 32.1, 34.5, 36.8, 39.0])


def test_bd_rate_identical_curves_is_zero() -> None:
    assert bd_rate(RATE, DIST, RATE, DIST) == pytest.approx(0.0, abs=1e-9)
    assert bd_psnr(RATE, DIST, RATE, DIST) == pytest.approx(0.0, abs=1e-9)


def test_bd_rate_half_rate_is_minus_50() -> None:
    assert bd_rate(RATE, DIST, RATE / 2, DIST) == pytest.approx(-50.0, abs=1e-6)


def test_bd_rate_double_rate_is_plus_100() -> None:
    assert bd_rate(RATE, DIST, RATE * 2, DIST) == pytest.approx(100.0, abs=1e-6)


def test_bd_rate_is_antisymmetric_in_log_domain() -> None:
    # Swapping anchor and test inverts the rate ratio when both cover the same quality range.
    rate_b, dist_b = RATE * 0.8, DIST
    forward = bd_rate(RATE, DIST, rate_b, dist_b) / 100 + 1
    backward = bd_rate(rate_b, dist_b, RATE, DIST) / 100 + 1
    assert forward * backward == pytest.approx(1.0, abs=1e-9)


def test_bd_psnr_constant_shift() -> None:
    assert bd_psnr(RATE, DIST, RATE, DIST + 1.5) == pytest.approx(1.5, abs=1e-9)


def test_bd_rate_order_and_dominated_points_do_not_matter() -> None:
    perm = np.array([3, 0, 5, 1, 4, 2])
    # A duplicate setting and a point that costs more bits for less quality.
    rate = np.concatenate([RATE[perm], [RATE[2], 1.0]])
    dist = np.concatenate([DIST[perm], [DIST[2], 34.0]])
    assert bd_rate(RATE, DIST, rate, dist) == pytest.approx(0.0, abs=1e-9)


def test_bd_rate_non_overlapping_curves_raise() -> None:
    with pytest.raises(ValueError, match="do not overlap"):
        bd_rate(RATE, DIST, RATE, DIST + 20.0)
    with pytest.raises(ValueError, match="do not overlap"):
        bd_psnr(RATE, DIST, RATE * 100, DIST)


def test_bd_rate_too_few_points_raise() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        bd_rate(RATE[:1], DIST[:1], RATE, DIST)
    # Two points, but one dominates the other, so only one survives.
    with pytest.raises(ValueError, match="at least 2"):
        bd_rate(RATE, DIST, [0.5, 0.6], [33.0, 33.0])


def test_bd_rate_bad_input_raise() -> None:
    with pytest.raises(ValueError, match="positive"):
        bd_rate(RATE, DIST, [0.0, 0.5, 1.0], [28.0, 31.0, 35.0])
    with pytest.raises(ValueError, match="finite"):
        bd_rate(RATE, DIST, [0.5, 1.0, 8.0], [31.0, 35.0, math.inf])
    with pytest.raises(ValueError, match="rates but"):
        bd_rate(RATE, DIST, [0.5, 1.0], [31.0, 35.0, 36.0])


def test_psnr_identical_is_inf() -> None:
    img = np.random.default_rng(0).integers(0, 256, size=(8, 9, 3), dtype=np.uint8)
    assert psnr(img, img) == math.inf


def test_psnr_off_by_one() -> None:
    a = np.full((16, 16, 3), 100, dtype=np.uint8)
    b = a + 1
    # MSE = 1 -> 10*log10(255^2) = 48.1308 dB; also checks uint8 arithmetic does not wrap.
    assert psnr(a, b) == pytest.approx(48.1308036, abs=1e-6)
    assert psnr(b, a) == pytest.approx(48.1308036, abs=1e-6)


def test_psnr_averages_over_all_channels() -> None:
    a = np.zeros((4, 4, 3), dtype=np.uint8)
    b = a.copy()
    b[..., 0] = 3  # MSE over all channels = 9 / 3 = 3
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 3))


def test_psnr_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="shape"):
        psnr(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2), np.uint8))


def test_bpp() -> None:
    assert bpp(1000, 100, 80) == pytest.approx(1.0)
    assert bpp(49152, 768, 512) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        bpp(10, 0, 5)
