"""Coding one tile, and the cross-fade that joins decoded tiles.

A tile is coded independently of the others: the family coder sees it as a whole
image (padded to its multiple), the alpha band of the tile goes in the tile's own
``ALPH`` chunk. The same two functions run in the calling process or in a worker
(:mod:`.workers`), so both paths give identical bytes and pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from PIL import Image

from ..errors import AecError
from ..families.base import ModelCoder, RatePoint, Refinement
from ..format.chunks import CHUNK_ALPHA
from ..format.grid import TileGrid
from ..io.alpha import decode_alpha, encode_alpha
from ..io.arrays import array_to_image, image_to_array, pad, padded_size
from ..io.images import merge_alpha, split_alpha
from ..stages import stage


def model_input(coder: ModelCoder, colour: Image.Image) -> np.ndarray:
    """Colour pixels as the family's input: a float array padded to its multiple."""
    return pad(image_to_array(colour), coder.pad_multiple)


def analyse_tile(coder: ModelCoder, colour: Image.Image) -> Any:
    """The family's quality-independent analysis of one tile's colour pixels."""
    x = model_input(coder, colour)
    with stage("analysis transform"):
        return coder.analyse(x)


def encode_tile(
    coder: ModelCoder,
    tile: Image.Image,
    point: RatePoint,
    version: int,
    features: Any = None,
    effort: int = 1,
) -> dict[bytes, bytes]:
    """Chunks of one tile (an image in a native mode) at rate ``point``; ``features`` if
    already analysed; an ``effort`` of its family that iterates (above 1; every level of
    the overfitted family) refines the tile's latents on its own pixels."""
    colour, alpha = split_alpha(tile)
    if features is None:
        features = analyse_tile(coder, colour)
    refinement = None
    if coder.family.efforts.get(effort, 0) > 0:  # this level iterates on the tile's pixels
        refinement = Refinement(effort, model_input(coder, colour),
                                (colour.height, colour.width))
    with stage("entropy coding"):
        chunks = dict(coder.compress(features, point, version, refinement))
    if alpha is not None:
        chunks[CHUNK_ALPHA] = encode_alpha(alpha)
    return chunks


def decode_tile(
    coder: ModelCoder,
    chunks: Mapping[bytes, bytes],
    size: tuple[int, int],
    point: RatePoint,
    version: int,
    mode: str,
    exact: bool = False,
) -> Image.Image:
    """One tile's pixels, (width, height) = ``size``, in the file's ``mode``; ``exact``:
    with the model's exact synthesis (the same bits everywhere; see
    :func:`exact_synthesis`)."""
    width, height = size
    with stage("entropy decoding"):
        latents = coder.decompress_latents(
            chunks, padded_size(width, height, coder.pad_multiple), point, version
        )
    gray = mode in ("L", "LA")
    with stage("synthesis transform"):
        if exact:
            pixels = exact_synthesis(coder)(latents, point)[:height, :width]
            colour = Image.fromarray(np.ascontiguousarray(pixels), "RGB")
            colour = colour.convert("L") if gray else colour  # integer arithmetic
        else:
            x_hat = coder.synthesize(latents, point)[:height, :width]
            colour = array_to_image(x_hat, "L" if gray else "RGB")
            del x_hat
    del latents
    alpha = None
    if mode in ("LA", "RGBA"):
        alpha = decode_alpha(chunks[CHUNK_ALPHA], size)
    return merge_alpha(colour, alpha)


def exact_synthesis(coder: ModelCoder) -> Callable[[Any, RatePoint], np.ndarray]:
    """The model's exact synthesis, ``(latents, point) -> uint8 (H, W, 3)``; an AecError
    for a model whose family has none (only those on the hyperprior's transforms have)."""
    method = getattr(coder, "synthesize_exact", None)
    if method is None:
        raise AecError(f"model '{coder.name}' has no exact synthesis")
    return method


def blend_mask(grid: TileGrid, index: int) -> Image.Image | None:
    """Weights (mode L) for pasting tile ``index``'s coded box over its left and upper
    neighbours, already in place: a linear ramp 0 -> 1 across the 2 x overlap pixels
    around each shared border, 1 elsewhere. None where there is nothing to blend."""
    row, col = divmod(index, grid.columns)
    left, top, right, bottom = grid.coded_box(index)
    ramp = 2 * grid.overlap

    def weights(size: int, has_neighbour: bool) -> np.ndarray:
        w = np.ones(size)
        if has_neighbour and ramp:
            n = min(ramp, size)
            w[:n] = (np.arange(n) + 0.5) / ramp
        return w

    if not grid.overlap or (row == 0 and col == 0):
        return None
    wx = weights(right - left, col > 0)
    wy = weights(bottom - top, row > 0)
    mask = np.rint(255 * wy[:, None] * wx[None, :]).astype(np.uint8)
    return Image.fromarray(mask, "L")
