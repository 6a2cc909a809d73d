"""The residual's decoding order and what is known at each step of it.

The residual is decoded channel by channel (R, G, B, then alpha), each channel in parallel
passes over the phases of a small grid (a :class:`Schedule`). With the 2×2 grid the four
phases are (even, even), (odd, odd), (even, odd), (odd, even); the 4×4 grid refines each
of them into four (16 passes), so that fewer positions are decoded without any decoded
neighbour. Within a pass every position is independent of the others, so a pass is one
vectorised step. A position's context is then

* the reconstruction ``x̂`` around it (all channels, always known);
* the same channel's residuals already decoded in its 5×5 neighbourhood (2×2 grid: none in
  the first phase, 4 in the second, 12 in the third, 16 in the last);
* the earlier channels' residuals in its 3×3 neighbourhood (all decoded).

Every feature is a fixed constant times an integer (uint8 ``x̂``, decoded residuals in
levels, their sums): :class:`IntegerFeatures` gives the integers (what the exact networks
of :mod:`.exact` take, the constants folded into their first layer), :class:`Features`
the float rows the research models take.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NEIGHBOURS_5x5 = tuple((di, dj) for di in range(-2, 3) for dj in range(-2, 3)
                       if (di, dj) != (0, 0))
NEIGHBOURS_3x3 = tuple((di, dj) for di in range(-1, 2) for dj in range(-1, 2)
                       if (di, dj) != (0, 0))
PAD = 2
# Fixed input scales (an integer network folds them into its first layer).
RESIDUAL_SCALE = 1 / 8
XHAT_DIFF_SCALE = 1 / 32


@dataclass(frozen=True)
class Schedule:
    """Phases of a ``grid`` × ``grid`` tiling, in decoding order: (row, column) mod grid."""

    grid: int
    phases: tuple[tuple[int, int], ...]

    def decoded_offsets(self, phase: int) -> tuple[tuple[int, int], ...]:
        """The 5×5 offsets whose positions belong to an earlier phase than ``phase``."""
        pr, pc = self.phases[phase]
        earlier = set(self.phases[:phase])
        g = self.grid
        return tuple((di, dj) for di, dj in NEIGHBOURS_5x5
                     if ((pr + di) % g, (pc + dj) % g) in earlier)


TWO_BY_TWO = Schedule(2, ((0, 0), (1, 1), (0, 1), (1, 0)))
FOUR_BY_FOUR = Schedule(4, tuple((2 * r + dr, 2 * c + dc) for dr, dc in TWO_BY_TWO.phases
                                 for r, c in TWO_BY_TWO.phases))
SCHEDULES = {"2x2": TWO_BY_TWO, "4x4": FOUR_BY_FOUR}


def schedule_with(phases: int) -> Schedule:
    """The schedule of that many phases."""
    return next(s for s in SCHEDULES.values() if len(s.phases) == phases)


@dataclass(frozen=True)
class Pass:
    channel: int
    phase: int
    schedule: Schedule = TWO_BY_TWO

    def positions(self, shape: tuple[int, int]) -> tuple[slice, slice]:
        """The pass's positions in an (H, W) array, as slices."""
        pr, pc = self.schedule.phases[self.phase]
        g = self.schedule.grid
        return slice(pr, shape[0], g), slice(pc, shape[1], g)

    def decoded_offsets(self) -> tuple[tuple[int, int], ...]:
        return self.schedule.decoded_offsets(self.phase)


def passes(channels: int, schedule: Schedule = TWO_BY_TWO) -> list[Pass]:
    """The decoding order: channel-major, every phase of the schedule for each."""
    return [Pass(c, p, schedule) for c in range(channels) for p in range(len(schedule.phases))]


def _shifted(padded: np.ndarray, p: Pass, shape: tuple[int, int], di: int, dj: int
             ) -> np.ndarray:
    """``padded`` (H + 2·PAD, W + 2·PAD) read at each pass position plus (di, dj)."""
    rows, cols = p.positions(shape)
    g = p.schedule.grid
    return padded[PAD + rows.start + di: PAD + shape[0] + di: g,
                  PAD + cols.start + dj: PAD + shape[1] + dj: g]


def _whole(padded: np.ndarray, shape: tuple[int, int], di: int, dj: int) -> np.ndarray:
    """``padded`` read at every position plus (di, dj)."""
    return padded[PAD + di: PAD + shape[0] + di, PAD + dj: PAD + shape[1] + dj]


# The largest |decoded residual| in levels: |q| (2K + 1) <= 255 + K, K <= 8 (the decoder
# refuses larger symbols, so the integer networks' bounds hold for damaged files too).
RESIDUAL_LIMIT = 263


class IntegerFeatures:
    """Each pass's context of one image as integer columns (what the exact networks take):
    the decoded residuals in levels, ``x̂`` differences, the centre, the activity (a sum of
    magnitudes), then the stored quality (hundredths) and the step. The ``x̂`` columns are
    computed once per channel and image, not per pass. :meth:`scales` gives each column's
    fixed real scale, :meth:`bounds` its largest magnitude."""

    def __init__(self, xhat: np.ndarray, xhat_radius: int = 1):
        """``xhat_radius`` 1: ``x̂`` of this channel in a 3×3 window; 2: in a 5×5 window, and
        the other channels' 3×3 windows too."""
        if xhat_radius not in (1, 2):
            raise ValueError(f"x̂ radius must be 1 or 2, got {xhat_radius}")
        self.xhat_radius = xhat_radius
        self.shape = xhat.shape[:2]
        self.channels = xhat.shape[2]
        self.xhat = np.pad(xhat.astype(np.int16), ((PAD, PAD), (PAD, PAD), (0, 0)),
                           mode="edge")
        self._xhat_columns: tuple[int, np.ndarray] | None = None  # (channel, columns)

    def _window(self) -> tuple[tuple[int, int], ...]:
        return NEIGHBOURS_3x3 if self.xhat_radius == 1 else NEIGHBOURS_5x5

    def xhat_columns(self, c: int) -> np.ndarray:
        """(H, W, n) int16: every position's ``x̂`` columns with ``c`` as this channel
        (the last one computed is kept: the passes are channel-major)."""
        if self._xhat_columns is not None and self._xhat_columns[0] == c:
            return self._xhat_columns[1]
        shape, xpad = self.shape, self.xhat
        centre = _whole(xpad[..., c], shape, 0, 0)
        diffs = [_whole(xpad[..., c], shape, di, dj) - centre for di, dj in self._window()]
        cols = list(diffs)
        for e in range(self.channels):
            if e == c:
                continue
            other = _whole(xpad[..., e], shape, 0, 0)
            cols.append(other - centre)
            if self.xhat_radius == 2:
                cols += [_whole(xpad[..., e], shape, di, dj) - other for di, dj in NEIGHBOURS_3x3]
        cols.append(centre)
        cols.append(sum(np.abs(d) for d in diffs))
        out = np.stack(cols, axis=-1).astype(np.int16)
        self._xhat_columns = (c, out)
        return out

    def residual_columns(self, p: Pass, residual: np.ndarray) -> list[np.ndarray]:
        """The pass's decoded-residual columns, each (positions along rows, along columns)
        of ``residual`` (H, W, ≥ channel + 1) in levels (anything where not decoded yet:
        never read)."""
        rpad = np.pad(residual, ((PAD, PAD), (PAD, PAD), (0, 0)))
        c = p.channel
        same = [_shifted(rpad[..., c], p, self.shape, di, dj) for di, dj in p.decoded_offsets()]
        cols = same + [np.abs(v) for v in same]
        for e in range(c):  # earlier channels: 3×3 values and magnitudes
            prev = [_shifted(rpad[..., e], p, self.shape, 0, 0)]
            prev += [_shifted(rpad[..., e], p, self.shape, di, dj) for di, dj in NEIGHBOURS_3x3]
            cols += prev + [np.abs(v) for v in prev]
        return cols

    def __call__(self, p: Pass, residual: np.ndarray) -> np.ndarray:
        """(positions, columns) int32 for pass ``p``, the globals left out."""
        rows, cols = p.positions(self.shape)
        xcols = self.xhat_columns(p.channel)[rows, cols]
        out = np.empty((xcols.shape[0] * xcols.shape[1],
                        self.residual_count(p) + xcols.shape[2]), dtype=np.int32)
        r = self.residual_columns(p, residual.astype(np.int32, copy=False))
        for i, v in enumerate(r):
            out[:, i] = v.ravel()
        out[:, len(r):] = xcols.reshape(-1, xcols.shape[2])
        return out

    def residual_count(self, p: Pass) -> int:
        return 2 * len(p.decoded_offsets()) + 18 * p.channel

    def xhat_count(self) -> int:
        window = len(self._window())
        others = (self.channels - 1) * (1 + (8 if self.xhat_radius == 2 else 0))
        return window + others + 2

    def scales(self, p: Pass) -> np.ndarray:
        """Each column's real scale (float64), the two globals' included (last)."""
        window = len(self._window())
        return np.array([RESIDUAL_SCALE] * self.residual_count(p)
                        + [XHAT_DIFF_SCALE] * (self.xhat_count() - 2)
                        + [1 / 255, XHAT_DIFF_SCALE / window, 1 / QUALITY_STORED_MAX,
                           1 / 8])

    def bounds(self, p: Pass) -> np.ndarray:
        """Each column's largest magnitude (float64), the two globals' included."""
        window = len(self._window())
        return np.array([RESIDUAL_LIMIT] * self.residual_count(p)
                        + [255] * (self.xhat_count() - 1)
                        + [255 * window, QUALITY_STORED_MAX, 2 * MAX_ERROR_LIMIT + 1],
                        dtype=np.float64)


QUALITY_STORED_MAX = 10000  # the stored quality: hundredths, 0..100 (format/quality.py)
MAX_ERROR_LIMIT = 8  # the largest K a model serves


def stored_quality(quality: float) -> int:
    """The quality as the file stores it (hundredths): the networks' integer input."""
    return int(round(float(quality) * 100))


class Features:
    """Each pass's float feature rows (the integer columns times their scales, the globals
    appended): what the float research models take."""

    def __init__(self, xhat: np.ndarray, quality: float, step: int, xhat_radius: int = 1):
        self.integer = IntegerFeatures(xhat, xhat_radius)
        self.xhat_radius = xhat_radius
        self.globals = (stored_quality(quality), step)

    def __call__(self, p: Pass, residual: np.ndarray) -> np.ndarray:
        """(positions, features) float32 for pass ``p``; ``residual`` (H, W, C) holds the
        decoded residuals in levels (anything where not decoded yet: never read)."""
        ints = self.integer(p, np.asarray(residual).astype(np.int32))
        full = np.empty((ints.shape[0], ints.shape[1] + 2), dtype=np.float64)
        full[:, :-2] = ints
        full[:, -2:] = self.globals
        return (full * self.integer.scales(p)).astype(np.float32)
