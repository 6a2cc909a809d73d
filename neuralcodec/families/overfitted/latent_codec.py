"""The latent pyramid's range coding under the exact ARM, in NumPy.

Decoding is auto-regressive, so it is vectorised along *wavefronts*: latent (r, c) of a
grid is on wavefront ``c + k*r``, with ``k`` the architecture's slope, so every context
position of a latent lies on an earlier wavefront. The grids do not see each other, so
all of them advance together: one step decodes wavefront t of every grid (768 + 3*512 =
2304 steps for a 768x512 image). Within a step the latents are in grid order, then row
order, and range-coded with a table per latent in one batched call (the narrow tables;
:meth:`~neuralcodec.entropy.SymbolEncoder.encode_rows`).
The encoder knows every latent, so it runs the ARM on all of them at once and only the
range coding follows the steps.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from ...entropy import SymbolDecoder, SymbolEncoder
from .architecture import OverfitArchitecture
from .arm_int import IntLinear, arm_tables
from .laplace_tables import laplace_tables


@dataclass
class Layout:
    """Every grid in one flat zero-padded buffer, and the wavefront schedule over it."""

    shapes: list[tuple[int, int]]
    positions: np.ndarray  # buffer index of each latent, grids then raster order
    context_offsets: np.ndarray  # (latents, context): buffer offsets of the neighbours
    order: np.ndarray  # latents (indices into ``positions``) in decoding order
    steps: np.ndarray  # start of each step in ``order``, plus the end
    size: int  # buffer length
    # In decoding order: each latent's buffer index, and its neighbours' (so that a
    # step's contexts are one gather of a contiguous block of rows).
    ordered_positions: np.ndarray = field(init=False, repr=False)
    ordered_contexts: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.ordered_positions = self.positions[self.order]
        self.ordered_contexts = (self.ordered_positions[:, None]
                                 + self.context_offsets[self.order]).astype(np.int32)

    @classmethod
    def build(cls, arch: OverfitArchitecture, height: int, width: int) -> Layout:
        ctx = np.array(arch.context)
        top, left = int(-ctx[:, 0].min()), int(-ctx[:, 1].min())
        right = max(0, int(ctx[:, 1].max()))
        k = arch.wavefront_slope
        shapes = arch.grid_shapes(height, width)
        positions, offsets, waves = [], [], []
        start = 0
        for h, w in shapes:
            pw = left + w + right
            rows, cols = np.divmod(np.arange(h * w), w)
            positions.append(start + (rows + top) * pw + cols + left)
            grid_offsets = ctx[:, 0] * pw + ctx[:, 1]
            offsets.append(np.broadcast_to(grid_offsets, (h * w, len(ctx))))
            waves.append(cols + k * rows)
            start += (top + h) * pw
        positions = np.concatenate(positions)
        wave = np.concatenate(waves)
        order = np.argsort(wave, kind="stable")  # grids, then rows, within a wavefront
        counts = np.bincount(wave)
        steps = np.concatenate([[0], np.cumsum(counts)])
        return cls(shapes, positions, np.concatenate(offsets), order, steps, start)

    def flat(self, grids: Sequence[np.ndarray]) -> np.ndarray:
        return np.concatenate([np.asarray(g, dtype=np.int64).ravel() for g in grids])

    def grids(self, flat: np.ndarray) -> list[np.ndarray]:
        out, start = [], 0
        for h, w in self.shapes:
            out.append(flat[start:start + h * w].reshape(h, w))
            start += h * w
        return out

    def contexts(self, buffer: np.ndarray, latents: np.ndarray) -> np.ndarray:
        """(len(latents), context) float64 rows of the buffer's values around them."""
        idx = self.positions[latents, None] + self.context_offsets[latents]
        return buffer[idx]


def table_indices(layout: Layout, grids: Sequence[np.ndarray], arm: list[IntLinear]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Table index and base of every latent (flat, grid then raster order), all at once."""
    buffer = np.zeros(layout.size)
    buffer[layout.positions] = layout.flat(grids)
    everything = np.arange(len(layout.positions))
    return arm_tables(layout.contexts(buffer, everything), arm)


def encode_latents(layout: Layout, grids: Sequence[np.ndarray], arm: list[IntLinear]
                   ) -> tuple[bytes, list[int]]:
    """Range-coded stream and escapes of the integer latent grids."""
    values = layout.flat(grids)
    tables, base = table_indices(layout, grids, arm)
    symbols = values - base.astype(np.int64)
    tables = tables.astype(np.int64)
    encoder = SymbolEncoder()
    for s, e in zip(layout.steps[:-1].tolist(), layout.steps[1:].tolist(), strict=True):
        chosen = layout.order[s:e]
        encoder.encode_rows(symbols[chosen], tables[chosen], laplace_tables())
    return encoder.finish()


def decode_latents(layout: Layout, stream: bytes, escapes: Iterator[int],
                   arm: list[IntLinear]) -> list[np.ndarray]:
    """The integer latent grids back, one wavefront step at a time."""
    decoder = SymbolDecoder(stream, escapes)
    buffer = np.zeros(layout.size)
    values = np.zeros(len(layout.positions), dtype=np.int64)
    table_set = laplace_tables()
    # A step's matrix products are tiny: BLAS threads would only wait on each other.
    with threadpool_limits(1, user_api="blas"):
        for s, e in zip(layout.steps[:-1].tolist(), layout.steps[1:].tolist(), strict=True):
            tables, base = arm_tables(buffer[layout.ordered_contexts[s:e]], arm)
            decoded = decoder.decode_rows(tables.astype(np.int64), table_set) + base.astype(
                np.int64)
            values[s:e] = decoded
            buffer[layout.ordered_positions[s:e]] = decoded
    out = np.empty_like(values)
    out[layout.order] = values
    return layout.grids(out)
