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
levels, their sums), so an exact integer network, as the latents' parameter path has, can
take the integers and fold the constants into its first layer.
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


class Features:
    """Builds each pass's feature rows for one image (``x̂`` padded once)."""

    def __init__(self, xhat: np.ndarray, quality: float, step: int, xhat_radius: int = 1):
        """``xhat_radius`` 1: ``x̂`` of this channel in a 3×3 window; 2: in a 5×5 window, and
        the other channels' 3×3 windows too."""
        if xhat_radius not in (1, 2):
            raise ValueError(f"x̂ radius must be 1 or 2, got {xhat_radius}")
        self.xhat_radius = xhat_radius
        self.shape = xhat.shape[:2]
        self.channels = xhat.shape[2]
        self.xhat = np.pad(xhat.astype(np.float32), ((PAD, PAD), (PAD, PAD), (0, 0)),
                           mode="edge")
        self.globals = (quality / 100.0, step / 8.0)

    def __call__(self, p: Pass, residual: np.ndarray) -> np.ndarray:
        """(positions, features) float32 for pass ``p``; ``residual`` (H, W, C) holds the
        decoded residuals in levels (anything where not decoded yet: never read)."""
        rpad = np.pad(residual.astype(np.float32), ((PAD, PAD), (PAD, PAD), (0, 0)))
        c = p.channel
        cols: list[np.ndarray] = []
        same = [_shifted(rpad[..., c], p, self.shape, di, dj) * RESIDUAL_SCALE
                for di, dj in p.decoded_offsets()]
        cols += same + [np.abs(v) for v in same]
        for e in range(c):  # earlier channels: 3×3 values and magnitudes
            prev = [_shifted(rpad[..., e], p, self.shape, 0, 0) * RESIDUAL_SCALE]
            prev += [_shifted(rpad[..., e], p, self.shape, di, dj) * RESIDUAL_SCALE
                     for di, dj in NEIGHBOURS_3x3]
            cols += prev + [np.abs(v) for v in prev]
        centre = _shifted(self.xhat[..., c], p, self.shape, 0, 0)
        window = NEIGHBOURS_3x3 if self.xhat_radius == 1 else NEIGHBOURS_5x5
        diffs = [(_shifted(self.xhat[..., c], p, self.shape, di, dj) - centre) * XHAT_DIFF_SCALE
                 for di, dj in window]
        cols += diffs
        for e in range(self.channels):
            if e == c:
                continue
            other = _shifted(self.xhat[..., e], p, self.shape, 0, 0)
            cols.append((other - centre) * XHAT_DIFF_SCALE)
            if self.xhat_radius == 2:
                cols += [(_shifted(self.xhat[..., e], p, self.shape, di, dj) - other)
                         * XHAT_DIFF_SCALE for di, dj in NEIGHBOURS_3x3]
        cols.append(centre / 255.0)
        cols.append(sum(np.abs(d) for d in diffs) / len(diffs))
        ones = np.ones_like(centre)
        cols += [ones * g for g in self.globals]
        return np.stack([v.ravel() for v in cols], axis=1)
