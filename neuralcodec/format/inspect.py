"""What a file holds, from its header and chunk directory, without decoding (no torch)."""

from __future__ import annotations

from . import container
from .requirement import CHUNK_NEED, Requirement


def describe(data: bytes) -> dict:
    """Header facts and chunk sizes of .aec bytes, without decoding."""
    parsed = container.unpack(bytes(data))
    h = parsed.header
    grid = h.grid
    chunk_sizes: dict[str, int] = {}  # bytes per tag, summed over tiles
    for chunks in [*parsed.tiles, parsed.chunks]:
        for tag, payload in chunks.items():
            chunk_sizes[tag.decode()] = chunk_sizes.get(tag.decode(), 0) + len(payload)
    facts = {
        "format_version": h.version,
        "model": h.model,
        "fingerprint": h.fingerprint.hex(),
        "width": h.width,
        "height": h.height,
        "mode": h.mode,
        "quality": h.quality_value,
        "bytes": len(data),
        "bpp": 8 * len(data) / (h.width * h.height),
        "tiles": f"{len(grid)} ({grid.columns}x{grid.rows} of "
                 f"{grid.tile_width}x{grid.tile_height})",
        "chunks": chunk_sizes,
    }
    if CHUNK_NEED in parsed.chunks:  # files of aec 0.2.0 and later
        facts["needs"] = f"aec {Requirement.unpack(parsed.chunks[CHUNK_NEED]).text}"
    return facts
