"""The tile grid of a version-3 file: which pixels each tile owns and codes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TileGrid:
    """Tiles in raster order; the last column and row may be narrower.

    Each tile *owns* its box; it is *coded* with ``overlap`` extra pixels on every side
    that has a neighbour, and the decoder cross-fades neighbours over those 2 x overlap
    pixels, which hides the seams of independently coded tiles.
    """

    width: int
    height: int
    tile_width: int
    tile_height: int
    overlap: int = 0

    @property
    def columns(self) -> int:
        return -(-self.width // self.tile_width)

    @property
    def rows(self) -> int:
        return -(-self.height // self.tile_height)

    def __len__(self) -> int:
        return self.columns * self.rows

    def box(self, index: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of tile ``index`` in image pixels."""
        row, col = divmod(index, self.columns)
        left, top = col * self.tile_width, row * self.tile_height
        return (left, top, min(left + self.tile_width, self.width),
                min(top + self.tile_height, self.height))

    def coded_box(self, index: int) -> tuple[int, int, int, int]:
        """The box tile ``index`` codes: its own box widened by the overlap."""
        left, top, right, bottom = self.box(index)
        m = self.overlap
        return (max(left - m, 0), max(top - m, 0), min(right + m, self.width),
                min(bottom + m, self.height))

    @property
    def largest_coded_tile(self) -> tuple[int, int]:
        """(width, height) of the largest coded box: what a decoder holds at once."""
        m = self.overlap
        return (min(self.tile_width + 2 * m, self.width),
                min(self.tile_height + 2 * m, self.height))
