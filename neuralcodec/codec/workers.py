"""Worker processes that code many tiles of one image in parallel.

Workers are separate processes (not threads) because the range coder holds the GIL.
They are forked from a *forkserver* that has imported the coding path but never run it,
which is safe with the BLAS's and OpenMP's thread pools and cheaper than spawning a
fresh interpreter per worker. Each loads the model once.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from PIL import Image

from ..cpu import usable_cpus
from ..errors import AecError
from ..families.base import ModelCoder, RatePoint
from ..families.zoo import load_coder
from .options import MAX_AUTO_WORKERS, PARALLEL_MIN_TILES
from .threads import set_threads
from .tiles import decode_tile, encode_tile

_worker_coder: ModelCoder | None = None


def _init_worker(model: str, threads: int) -> None:
    global _worker_coder
    set_threads(threads)
    _worker_coder = load_coder(model, "cpu")


def _encode_in_worker(tile: Image.Image, point: RatePoint, version: int, effort: int
                      ) -> dict[bytes, bytes]:
    assert _worker_coder is not None
    return encode_tile(_worker_coder, tile, point, version, effort=effort)


def _decode_in_worker(chunks: dict[bytes, bytes], size: tuple[int, int], point: RatePoint,
                      version: int, mode: str, exact: bool) -> Image.Image:
    assert _worker_coder is not None
    return decode_tile(_worker_coder, chunks, size, point, version, mode, exact)




class TileWorkers:
    """A pool of processes, each with the model ``model`` loaded once, on the CPU."""

    def __init__(self, model: str, workers: int):
        self.model = model
        self.workers = workers
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["neuralcodec.codec.workers"])
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

    def encode(self, tiles: Iterable[tuple[int, Image.Image]], point: RatePoint,
               version: int, effort: int = 1) -> Iterator[tuple[int, Future]]:
        return self._run(_encode_in_worker,
                         ((i, (tile, point, version, effort)) for i, tile in tiles))

    def decode(self, tiles: Iterable[tuple[int, dict[bytes, bytes], tuple[int, int]]],
               point: RatePoint, version: int, mode: str, exact: bool = False
               ) -> Iterator[tuple[int, Future]]:
        return self._run(_decode_in_worker, (
            (i, (chunks, size, point, version, mode, exact)) for i, chunks, size in tiles))

    def run(self, fn: Callable, jobs: Iterable[tuple[int, tuple]]
            ) -> Iterator[tuple[int, Future]]:
        """(key, finished future of ``fn(*args)``) for each (key, args), in order: for
        work that needs no model of the pool's (``fn`` a module-level function)."""
        return self._run(fn, jobs)


class WorkerPools:
    """One pool per model, kept between images, resized when an image needs another size."""

    def __init__(self) -> None:
        self._pools: dict[str, TileWorkers] = {}

    def get(self, model: str, tiles: int, workers: int | None) -> TileWorkers | None:
        """A pool for an image of ``tiles`` tiles, or None to code in-process; ``workers``
        None chooses: none below PARALLEL_MIN_TILES, else the CPUs (at most 4)."""
        if workers is None:
            if tiles < PARALLEL_MIN_TILES:
                return None
            workers = min(usable_cpus(), MAX_AUTO_WORKERS)
        workers = min(workers, tiles)
        if workers <= 1:
            return None
        pool = self._pools.get(model)
        if pool is None or pool.workers != workers:
            if pool is not None:
                pool.close()
            pool = self._pools[model] = TileWorkers(model, workers)
        return pool

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
