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


# The largest |decoded residual| in levels: |q| (2K + 1) <= 255 + K, K <= 8 (the decoder
# refuses larger symbols, so the integer networks' bounds hold for damaged files too).
RESIDUAL_LIMIT = 263


@dataclass
class PassViews:
    """What one pass reads, as (pass rows, pass columns) views: the same channel's decoded
    residuals, each earlier channel's (centre first); ``x̂`` of this channel at the centre
    and over its window, and of each other channel at the centre and over its 3×3 window
    (with ``x̂`` radius 2)."""

    same: list[np.ndarray]
    earlier: list[list[np.ndarray]]
    centre: np.ndarray
    window: list[np.ndarray]
    others: list[tuple[np.ndarray, list[np.ndarray]]]

    @property
    def count(self) -> int:
        return (2 * len(self.same) + 18 * len(self.earlier) + len(self.window) + 2
                + sum(1 + len(w) for _, w in self.others))

    def rows(self, block: slice, dtype: type = np.int32) -> np.ndarray:
        """The (positions, columns) integers of the pass rows ``block``: values then
        magnitudes of the same channel's residuals, then of each earlier channel's; the
        differences of ``x̂`` in the window to the centre; for each other channel its
        centre's difference to this one's, then (radius 2) its window's to its centre; the
        centre; the activity (the sum of the window's differences' magnitudes). Each
        position's columns are made in its own pass only: once per channel and image."""
        centre = self.centre[block]
        shape = centre.shape
        out = np.empty((shape[0] * shape[1], self.count), dtype=dtype)
        columns = iter(range(self.count))

        def column() -> np.ndarray:
            return out[:, next(columns)].reshape(shape)

        for group in (self.same, *self.earlier):
            for v in group:
                column()[...] = v[block]
            for v in group:
                np.abs(v[block], out=column(), casting="unsafe")
        centre = centre.astype(np.int32)
        activity = np.zeros(shape, np.int32)
        for v in self.window:
            d = v[block] - centre
            column()[...] = d
            activity += np.abs(d)
        for other_centre, window in self.others:
            other = other_centre[block].astype(np.int32)
            column()[...] = other - centre
            for v in window:
                column()[...] = v[block] - other
        column()[...] = centre
        column()[...] = activity
        return out


class IntegerFeatures:
    """Each pass's context of one image as integer columns (what the exact networks take):
    the decoded residuals in levels, ``x̂`` differences, the centre, the activity (a sum of
    magnitudes), then the stored quality (hundredths) and the step. Each position's
    columns are made once per channel, in its own pass, block by block of rows if wished
    (:meth:`pass_views`). :meth:`scales` gives each column's fixed real scale,
    :meth:`bounds` its largest magnitude."""

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

    def _window(self) -> tuple[tuple[int, int], ...]:
        return NEIGHBOURS_3x3 if self.xhat_radius == 1 else NEIGHBOURS_5x5

    def pass_views(self, p: Pass, residual: np.ndarray, padded: bool = False) -> PassViews:
        """Views of everything pass ``p`` reads, each (pass rows, pass columns):
        ``residual`` (H, W, ≥ channel + 1) holds the decoded residuals in levels (anything
        where not decoded yet: never read); ``padded``: it is already padded by ``PAD``
        on every side (with zeros), as (H + 2·PAD, W + 2·PAD, …)."""
        rpad = residual if padded else np.pad(residual.astype(np.int32, copy=False),
                                              ((PAD, PAD), (PAD, PAD), (0, 0)))
        c, shape, xpad = p.channel, self.shape, self.xhat
        same = [_shifted(rpad[..., c], p, shape, di, dj) for di, dj in p.decoded_offsets()]
        earlier = [[_shifted(rpad[..., e], p, shape, di, dj)
                    for di, dj in ((0, 0), *NEIGHBOURS_3x3)] for e in range(c)]
        window = [_shifted(xpad[..., c], p, shape, di, dj) for di, dj in self._window()]
        others = [(_shifted(xpad[..., e], p, shape, 0, 0),
                   [_shifted(xpad[..., e], p, shape, di, dj) for di, dj in NEIGHBOURS_3x3]
                   if self.xhat_radius == 2 else [])
                  for e in range(self.channels) if e != c]
        return PassViews(same, earlier, _shifted(xpad[..., c], p, shape, 0, 0), window,
                         others)

    def __call__(self, p: Pass, residual: np.ndarray, dtype: type = np.int32) -> np.ndarray:
        """(positions, columns) for pass ``p``, the globals left out: integers, held in
        ``dtype`` (float64 for the exact networks' products)."""
        return self.pass_views(p, residual).rows(slice(None), dtype)

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

    def __init__(self, xhat: np.ndarray, quality: float, step: int, xhat_radius: int = 1,
                 integer: IntegerFeatures | None = None):
        """``integer``: the image's integer columns, where already made (for another
        quality or step of the same ``x̂``)."""
        self.integer = integer or IntegerFeatures(xhat, xhat_radius)
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
