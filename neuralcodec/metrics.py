"""Rate-distortion metrics: PSNR, bits per pixel and Bjøntegaard deltas.

BD-rate follows the common modern variant (as in CompressAI / VVC CTC tools): log-rate is
interpolated with a monotone piecewise-cubic (PCHIP) curve instead of Bjøntegaard's original
cubic polynomial fit, which can overshoot between points and give nonsense for odd curves.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import AecError, install_command

ArrayLike = Sequence[float] | np.ndarray


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB between two images of equal shape, averaged over all pixels and channels.

    Identical images give ``inf``.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"psnr: shape mismatch {a.shape} vs {b.shape}")
    if a.size == 0:
        raise ValueError("psnr: empty arrays")
    # float64 so uint8 differences neither wrap around nor lose precision in the mean.
    diff = a.astype(np.float64) - b.astype(np.float64)
    return psnr_from_mse(float(np.mean(diff * diff)), peak)


def psnr_from_mse(mse: float, peak: float = 255.0) -> float:
    """PSNR in dB of a mean squared error (for errors averaged over a region); 0 gives inf."""
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(peak * peak / mse))


def bpp(num_bytes: int, width: int, height: int) -> float:
    """Bits per pixel of a ``num_bytes`` file holding a ``width`` x ``height`` image."""
    if width <= 0 or height <= 0:
        raise ValueError(f"bpp: image size must be positive, got {width}x{height}")
    if num_bytes < 0:
        raise ValueError(f"bpp: negative byte count {num_bytes}")
    return 8.0 * num_bytes / (width * height)


def _rd_curve(rate: ArrayLike, dist: ArrayLike, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate an RD curve and keep its Pareto front, as (log-rate, distortion).

    Both coordinates of the result are strictly increasing, which the interpolation in
    either direction needs. Points that spend more bits without gaining quality (duplicate
    settings, a quality knob that saturates) are dominated and dropped; at equal rate the
    best distortion is kept.
    """
    r = np.asarray(rate, dtype=np.float64).ravel()
    d = np.asarray(dist, dtype=np.float64).ravel()
    if r.shape != d.shape:
        raise ValueError(f"{name}: {r.size} rates but {d.size} distortions")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(d))):
        raise ValueError(f"{name}: rates and distortions must be finite (lossless points?)")
    if np.any(r <= 0):
        raise ValueError(f"{name}: rates must be positive to take their logarithm")
    order = np.lexsort((-d, r))  # by rate, then best distortion first
    keep_r: list[float] = []
    keep_d: list[float] = []
    for ri, di in zip(r[order], d[order], strict=True):
        # Strictly better quality than every cheaper point; this also drops the worse
        # duplicates at an equal rate, since the best of them comes first.
        if not keep_d or di > keep_d[-1]:
            keep_r.append(float(ri))
            keep_d.append(float(di))
    if len(keep_r) < 2:
        raise ValueError(
            f"{name}: need at least 2 distinct, monotone RD points (4 or more recommended), "
            f"got {len(keep_r)} after dropping dominated points from {r.size}"
        )
    return np.log(np.array(keep_r)), np.array(keep_d)


def _overlap(x_a: np.ndarray, x_b: np.ndarray, what: str) -> tuple[float, float]:
    lo = max(float(x_a.min()), float(x_b.min()))
    hi = min(float(x_a.max()), float(x_b.max()))
    if hi <= lo:
        raise ValueError(
            f"RD curves do not overlap in {what}: anchor spans "
            f"[{x_a.min():.4g}, {x_a.max():.4g}], test spans [{x_b.min():.4g}, {x_b.max():.4g}]"
        )
    return lo, hi


def _mean_gap(
    x_a: np.ndarray, y_a: np.ndarray, x_b: np.ndarray, y_b: np.ndarray, what: str
) -> float:
    """Mean of (y_b - y_a) over the overlapping x interval, both curves PCHIP-interpolated."""
    lo, hi = _overlap(x_a, x_b, what)
    PchipInterpolator = _pchip()
    int_a = PchipInterpolator(x_a, y_a).integrate(lo, hi)
    int_b = PchipInterpolator(x_b, y_b).integrate(lo, hi)
    return float((int_b - int_a) / (hi - lo))


def _pchip() -> type:
    """SciPy's PCHIP interpolator, imported here: SciPy is in the ``bench`` extra (143 MB,
    for BD-rates only) and costs about 0.3 s to import."""
    try:
        from scipy.interpolate import PchipInterpolator
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != "scipy":
            raise
        raise AecError(f"BD-rate needs scipy: {install_command('bench')}") from None
    return PchipInterpolator


def bd_rate(rate_a: ArrayLike, dist_a: ArrayLike, rate_b: ArrayLike, dist_b: ArrayLike) -> float:
    """Bjøntegaard delta rate (%) of curve B (test) relative to curve A (anchor).

    Negative means B needs fewer bits for the same quality: -50 means half the bits.
    ``dist`` is a higher-is-better quality such as PSNR in dB; ``rate`` is e.g. bpp.
    """
    log_r_a, d_a = _rd_curve(rate_a, dist_a, "anchor curve")
    log_r_b, d_b = _rd_curve(rate_b, dist_b, "test curve")
    # log-rate as a function of quality, averaged over the common quality range.
    diff = _mean_gap(d_a, log_r_a, d_b, log_r_b, "distortion")
    return float((np.exp(diff) - 1.0) * 100.0)


def bd_psnr(rate_a: ArrayLike, dist_a: ArrayLike, rate_b: ArrayLike, dist_b: ArrayLike) -> float:
    """Bjøntegaard delta quality (dB for PSNR) of curve B (test) over curve A (anchor).

    Positive means B gives higher quality at the same rate, averaged over the common
    log-rate range.
    """
    log_r_a, d_a = _rd_curve(rate_a, dist_a, "anchor curve")
    log_r_b, d_b = _rd_curve(rate_b, dist_b, "test curve")
    return _mean_gap(log_r_a, d_a, log_r_b, d_b, "log-rate")
