"""What a file holds, from its header and chunk directory, without decoding (no torch)."""

from __future__ import annotations

from ..errors import CorruptFileError
from . import container
from .chunks import CHUNK_EXACT, CHUNK_RESIDUAL
from .requirement import CHUNK_NEED, Requirement
from .residual import ResidualChunk, wants_exact


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
    layer = residual_layer(parsed.tiles)
    exact = layer is not None or wants_exact(parsed.chunks.get(CHUNK_EXACT))
    facts["synthesis"] = "exact" if exact else "float"
    if layer is not None:
        facts["residual"] = {"max_error": layer.max_error, "model": layer.model}
    return facts


def residual_layer(tiles: list[dict[bytes, bytes]]) -> ResidualChunk | None:
    """The first tile's ``RESD`` chunk (its fields without the payload matter), or None
    for a file without the layer; the layer's maximum error and model must be the same in
    every tile that has one."""
    layers = [ResidualChunk.unpack(t[CHUNK_RESIDUAL]) for t in tiles if CHUNK_RESIDUAL in t]
    if not layers:
        return None
    if len({(r.max_error, r.model, r.fingerprint) for r in layers}) > 1:
        raise CorruptFileError("the tiles' RESD chunks differ in maximum error or model")
    return layers[0]


def residual_text(residual: dict) -> str:
    """``K=0 (lossless) aec-residual-1``: the residual layer as ``aec info`` shows it."""
    k = residual["max_error"]
    return f"K={k} ({'lossless' if k == 0 else 'near-lossless'}) {residual['model']}"


def residual_max_error(data: bytes) -> int | None:
    """The maximum error K of a file's residual layer, None without one."""
    layer = residual_layer(container.unpack(bytes(data)).tiles)
    return None if layer is None else layer.max_error
