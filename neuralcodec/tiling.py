"""Coding one tile, and worker processes that code many tiles in parallel.

A tile is coded independently of the others: the family coder sees it as a whole
image (padded to its multiple), the alpha band of the tile goes in the tile's own
``ALPH`` chunk. The same two functions run in the calling process or in a worker, so
both paths give identical bytes and pixels.

Workers are separate processes (not threads) because the range coder holds the GIL.
They are forked from a *forkserver* that has imported torch but never run it, which is
safe with OpenMP and cheaper than spawning a fresh interpreter per worker.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import torch
from PIL import Image

from .container import CHUNK_ALPHA, TileGrid
from .errors import AecError
from .image_io import (
    decode_alpha,
    encode_alpha,
    image_to_tensor,
    merge_alpha,
    pad_to_multiple,
    split_alpha,
    tensor_to_image,
)
from .registry import ModelCoder, load_coder


def padded_size(width: int, height: int, multiple: int) -> tuple[int, int]:
    """(H, W) of an image of this size padded up to ``multiple``."""
    return -(-height // multiple) * multiple, -(-width // multiple) * multiple


def model_input(coder: ModelCoder, colour: Image.Image, device: torch.device) -> torch.Tensor:
    """Colour pixels as the family's input: a float tensor padded to its multiple."""
    return pad_to_multiple(image_to_tensor(colour), coder.pad_multiple).to(device)


def analyse_tile(coder: ModelCoder, colour: Image.Image, device: torch.device) -> torch.Tensor:
    """The family's quality-independent analysis of one tile's colour pixels."""
    return coder.analyse(model_input(coder, colour, device))


@torch.no_grad()
def encode_tile(
    coder: ModelCoder,
    tile: Image.Image,
    quality: int,
    version: int,
    device: torch.device,
    features: torch.Tensor | None = None,
) -> dict[bytes, bytes]:
    """Chunks of one tile (an image in a native mode); ``features`` if already analysed."""
    colour, alpha = split_alpha(tile)
    if features is None:
        features = analyse_tile(coder, colour, device)
    chunks = dict(coder.compress(features, quality, version))
    if alpha is not None:
        chunks[CHUNK_ALPHA] = encode_alpha(alpha)
    return chunks


@torch.no_grad()
def decode_tile(
    coder: ModelCoder,
    chunks: Mapping[bytes, bytes],
    size: tuple[int, int],
    quality: int,
    version: int,
    mode: str,
) -> Image.Image:
    """One tile's pixels, (width, height) = ``size``, in the file's ``mode``."""
    width, height = size
    latents = coder.decompress_latents(
        chunks, padded_size(width, height, coder.pad_multiple), quality, version
    )
    x_hat = coder.synthesize(latents, quality)[:, :, :height, :width]
    colour = tensor_to_image(x_hat, "L" if mode in ("L", "LA") else "RGB")
    del latents, x_hat
    alpha = None
    if mode in ("LA", "RGBA"):
        alpha = decode_alpha(chunks[CHUNK_ALPHA], size)
    return merge_alpha(colour, alpha)


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


# -- worker processes ------------------------------------------------------------------

_worker_coder: ModelCoder | None = None


def _init_worker(model: str, threads: int) -> None:
    global _worker_coder
    torch.set_num_threads(threads)
    _worker_coder = load_coder(model, "cpu")


def _encode_in_worker(tile: Image.Image, quality: int, version: int) -> dict[bytes, bytes]:
    assert _worker_coder is not None
    return encode_tile(_worker_coder, tile, quality, version, torch.device("cpu"))


def _decode_in_worker(chunks: dict[bytes, bytes], size: tuple[int, int], quality: int,
                      version: int, mode: str) -> Image.Image:
    assert _worker_coder is not None
    return decode_tile(_worker_coder, chunks, size, quality, version, mode)


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class TileWorkers:
    """A pool of processes, each with the model ``model`` loaded once, on the CPU."""

    def __init__(self, model: str, workers: int):
        self.model = model
        self.workers = workers
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["neuralcodec.tiling"])
        threads = max(1, usable_cpus() // workers)
        self._executor = ProcessPoolExecutor(
            workers, mp_context=context, initializer=_init_worker, initargs=(model, threads)
        )

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _run(self, fn: Callable, jobs: Iterable[tuple[int, tuple]]
             ) -> Iterator[tuple[int, Future]]:
        """(key, finished future of fn(*args)) for each (key, args), in the jobs' order.
        At most two jobs per worker are in flight, so the arguments and results held stay
        bounded, and results come in order, so nothing waits in a buffer."""
        pending: deque[tuple[int, Future]] = deque()
        jobs = iter(jobs)
        try:
            while True:
                for key, args in jobs:
                    pending.append((key, self._executor.submit(fn, *args)))
                    if len(pending) >= 2 * self.workers:
                        break
                if not pending:
                    return
                key, future = pending.popleft()
                if isinstance(future.exception(), BrokenProcessPool):
                    raise AecError(
                        "a tile worker process died (out of memory? a script that starts "
                        "aec without `if __name__ == '__main__':`? workers=1 codes in "
                        "this process)")
                yield key, future
        finally:
            for _, future in pending:
                future.cancel()

    def encode(self, tiles: Iterable[tuple[int, Image.Image]], quality: int,
               version: int) -> Iterator[tuple[int, Future]]:
        return self._run(_encode_in_worker,
                         ((i, (tile, quality, version)) for i, tile in tiles))

    def decode(self, tiles: Iterable[tuple[int, dict[bytes, bytes], tuple[int, int]]],
               quality: int, version: int, mode: str) -> Iterator[tuple[int, Future]]:
        return self._run(_decode_in_worker, (
            (i, (chunks, size, quality, version, mode)) for i, chunks, size in tiles))
