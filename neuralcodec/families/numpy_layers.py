"""Convolutions and GDN on NumPy arrays: the transforms' inference without torch.

Layout: one image as an (H, W, C) array, channels last and C-contiguous, no batch axis. A
block of pixels is then a plain (pixels, channels) matrix, so a layer is a few large matrix
products over blocks of output rows, plus copies that move runs of whole pixels; the blocks
run on several threads (see below). Weights come in torch's layout and are rearranged once,
when a layer is built, because a layer is called many times.

A convolution gathers, per block, the input windows its output pixels read and multiplies
them by the weight matrix: by groups of ``stride`` input rows (each row gathered once, a
sum of a few products) or, for few input channels, im2col (all k*k taps per pixel, one
product). A transposed convolution runs polyphase: output phase (py, px) of stride s is an
ordinary stride-1 convolution of the input over a small neighbourhood (3x3 for k=5, s=2),
so one gathered block serves all phases, one product per phase over its own range of
columns (no zero taps), interleaved into the output (depth-to-space); with few output
channels it multiplies whole input pixels instead and sums the shifted products.

Only products and sums, nothing rescaled: on integer-valued float64 data whose partial sums
stay below 2**53 the results are exact, equal to torch's float64 results bit for bit.
Arrays may be float32 or float64; the output has the input's dtype (weights are cast to it
once and kept). Buffers are bounded per block and thread (``BLOCK_BYTES``), whatever the
image size.

Threads: a layer cuts its work into blocks whose bounds depend only on the shapes and the
constants below, never on the thread count, and runs them on :func:`threads` Python threads
(NumPy releases the GIL in its products, copies and ufuncs), each worker with its own
scratch buffers; BLAS runs one thread meanwhile (``threadpoolctl``, about 10 us a call).
Every block is then computed the same way whatever the thread count, so the results are
bit-identical for any :func:`set_threads`. The BLAS thread limit is process-wide: calls from
several user threads at once are correct but may leave BLAS's thread count changed.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..cpu import usable_cpus

# Bytes of one im2col block; a block of output rows (or of a row) is gathered and multiplied
# at a time, so that the buffer stays in cache and memory is bounded for any image size.
BLOCK_BYTES = 16 << 20
# Positions normalised per block by GDN: a block's squares and norms stay in cache.
GDN_BLOCK = 2048
# Convolutions run by groups of input rows ("rows") when each of their products is at least
# this deep; shallower ones (e.g. 3 input channels) gather all taps per pixel ("im2col").
ROWS_MIN_DEPTH = 256
# Transposed convolutions with at least this many output channels run one product per
# phase (skipping zero taps); narrower ones run one product for all phases together.
PHASE_SPLIT_MIN_COUT = 16
# ... and those with s*s*Cout at most Cin / SCATTER_MAX_RATIO scatter products of whole
# input pixels instead of gathering (an RGB output: no 9*Cin-wide gather for 3 channels).
SCATTER_MAX_RATIO = 4
# Blocks of output rows are cut so that a layer has at least this many blocks where its
# rows allow (for the threads to share), but of at least MIN_BLOCK_ROWS rows.
MIN_BLOCKS = 8
MIN_BLOCK_ROWS = 4

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


_threads: int | None = None  # None: the default (see threads())
_pool: ThreadPoolExecutor | None = None  # threads() - 1 workers (the caller is one more)
_pool_size = 0
_pool_lock = threading.Lock()
_controller = None  # threadpoolctl's ThreadpoolController


def _blas():
    """threadpoolctl's controller of the loaded libraries, made once (it scans them)."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


def _after_fork() -> None:  # a forked child has none of the pool's threads
    global _pool, _pool_size, _pool_lock
    _pool, _pool_size, _pool_lock = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def threads() -> int:
    """Threads a layer runs its blocks on: as :func:`set_threads` says, by default as many
    as BLAS is set to outside the layers (which ``codec.threads.set_threads`` sets, and
    which OpenBLAS starts at the CPUs this process may use), else the usable CPUs."""
    if _threads is not None:
        return _threads
    counts = [lib.num_threads for lib in _blas().lib_controllers if lib.user_api == "blas"]
    return max(1, max(counts)) if counts else usable_cpus()


def set_threads(n: int | None) -> None:
    """Run layers on ``n`` threads (None: the default). Results do not depend on it."""
    global _threads
    if n is not None and int(n) < 1:
        raise ValueError(f"threads must be at least 1, got {n}")
    with _pool_lock:
        _threads = None if n is None else int(n)


def _executor(workers: int) -> ThreadPoolExecutor:
    """The pool of ``workers`` threads, made anew when the count changes."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size != workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool, _pool_size = ThreadPoolExecutor(workers, "numpy_layers"), workers
        return _pool


def _blas_one_thread():
    """A context manager under which BLAS runs one thread."""
    return _blas().limit(limits=1, user_api="blas")


def _parallel(nblocks: int, worker: Callable[[], Callable[[int], None]]) -> None:
    """Run blocks 0..nblocks-1 on :func:`threads` threads, BLAS on one thread. ``worker()``
    makes one thread's block function (with its own scratch buffers); each thread calls it
    on the blocks it takes, in any order, so blocks must write disjoint outputs."""
    total = threads()
    n = min(total, nblocks)
    with _blas_one_thread():
        if n <= 1:
            run = worker()
            for i in range(nblocks):
                run(i)
            return
        counter = itertools.count()  # next() is atomic under the GIL
        failed = []

        def loop() -> None:
            run = worker()
            for i in counter:
                if i >= nblocks or failed:
                    return
                try:
                    run(i)
                except BaseException:
                    failed.append(True)
                    raise

        pool = _executor(total - 1)
        futures = [pool.submit(loop) for _ in range(n - 1)]
        try:
            loop()
        finally:
            for f in futures:
                f.exception()  # wait for every thread before the buffers go
        for f in futures:
            f.result()


def run_blocks(nblocks: int, worker: Callable[[], Callable[[int], None]]) -> None:
    """Run blocks 0..nblocks-1 of another module's work on the layers' threads, as the
    layers run theirs (see :func:`_parallel`): ``worker()`` makes one thread's block
    function; blocks must write disjoint outputs."""
    _parallel(nblocks, worker)


def _image(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"expected an (H, W, C) array, got shape {x.shape}")
    if x.dtype not in _DTYPES:
        raise TypeError(f"expected float32 or float64, got {x.dtype}")
    return np.ascontiguousarray(x)


def _master(a: np.ndarray) -> np.ndarray:
    """A weight array in a float dtype at least as wide as float32 (exact copy)."""
    a = np.asarray(a)
    return a.astype(np.result_type(a.dtype, np.float32), copy=False)


def _square(weight: np.ndarray) -> tuple[np.ndarray, int, int, int]:
    """A kernel (a, b, k, k) as :func:`_master` makes it, with a, b and k."""
    weight = _master(weight)
    a, b, k, k2 = weight.shape
    if k != k2:
        raise ValueError("square kernels only")
    return weight, a, b, k


class _PerDtype:
    """Prepared arrays, cast once per input dtype."""

    def __init__(self, *arrays: np.ndarray | None):
        self._master = arrays
        self._cache: dict[np.dtype, tuple] = {}

    def get(self, dtype: np.dtype) -> tuple:
        got = self._cache.get(dtype)
        if got is None:
            got = tuple(
                None if a is None else np.ascontiguousarray(a, dtype=dtype) for a in self._master
            )
            self._cache[dtype] = got
        return got


def _take(x: np.ndarray, y0: int, y1: int, x0: int, x1: int,
          buf: np.ndarray | None = None) -> np.ndarray:
    """``x[y0:y1, x0:x1]`` for any bounds, zeros outside ``x`` (zero padding, cropping),
    copied into the start of ``buf`` if given (a flat buffer large enough)."""
    h, w, c = x.shape
    shape = (y1 - y0, x1 - x0, c)
    if buf is None:
        out = np.empty(shape, x.dtype)
    else:
        out = buf[: shape[0] * shape[1] * c].reshape(shape)
    a, b, l, r = max(y0, 0), min(y1, h), max(x0, 0), min(x1, w)
    if a >= b or l >= r:
        out.fill(0)
        return out
    out[: a - y0].fill(0)
    out[b - y0 :].fill(0)
    out[a - y0 : b - y0, : l - x0].fill(0)
    out[a - y0 : b - y0, r - x0 :].fill(0)
    out[a - y0 : b - y0, l - x0 : r - x0] = x[a:b, l:r]
    return out


def _runs(taps: list[tuple[int, int]]) -> list[tuple[int, int, int, int]]:
    """Taps (dy, dx) in column order -> runs (dy, dx, ntaps, first tap index) of taps on one
    row with consecutive dx: each run is one contiguous window of the padded input."""
    runs: list[list[int]] = []
    for i, (dy, dx) in enumerate(taps):
        last = runs[-1] if runs else None
        if last is not None and last[0] == dy and last[1] + last[2] == dx:
            last[2] += 1
        else:
            runs.append([dy, dx, 1, i])
    return [(a, b, c, d) for a, b, c, d in runs]


def _block_rows(ho: int, nr: int) -> int:
    """At most ``nr`` rows per block, fewer for MIN_BLOCKS blocks (of MIN_BLOCK_ROWS rows)."""
    share = max(MIN_BLOCK_ROWS, -(-ho // MIN_BLOCKS))
    return max(1, min(nr, share, ho))


def _tile(ho: int, wo: int, pixel_bytes: int, extra: int = 0) -> tuple[int, int]:
    """Rows and columns of output pixels per block, for a block of about BLOCK_BYTES
    (with ``extra`` more rows of the block's size gathered besides its own)."""
    per_row = max(1, wo) * pixel_bytes
    if per_row <= BLOCK_BYTES:
        nr = BLOCK_BYTES // per_row
        return _block_rows(ho, nr - extra if nr > 1 else nr), wo
    return 1, max(1, min(wo, BLOCK_BYTES // pixel_bytes))


def _tiles(ho: int, wo: int, nr: int, nc: int) -> list[tuple[int, int, int, int]]:
    """Blocks (r0, r1, c0, c1) of nr rows and nc columns (fewer at the ends)."""
    return [(r0, min(r0 + nr, ho), c0, min(c0 + nc, wo))
            for r0 in range(0, ho, nr) for c0 in range(0, wo, nc)]


def _gather_buffer(rows: int, width: int, ones: bool, dtype: np.dtype) -> np.ndarray:
    """A (rows, width) buffer for gathered columns, or with ``ones`` a (rows, width + 1)
    view whose last column is ones (a bias row in the weights adds the bias in the product);
    rows padded to keep their alignment."""
    if not ones:
        return np.empty((rows, width), dtype)
    buf = np.zeros((rows, width + 16), dtype)
    buf[:, width] = 1
    return buf[:, : width + 1]


class _Im2col:
    """Blocks of output pixels and their im2col matrices: ``blocks`` lists (r0, r1, c0, c1)
    and ``gather(block, buffers)`` returns the ((r1-r0)*(c1-c0), ntaps*C) matrix of one,
    in ``buffers`` (from ``buffers()``, one set per thread). Output pixel (r, q) takes, for
    each run (dy, dx, n, i), the n*C numbers of the zero-padded input from pixel
    (r*stride + origin + dy, q*stride + origin + dx) on, at columns i*C onwards. ``reach``
    is the extent of the runs (max dy + 1, max dx + n). Each block's rows of the input are
    first copied, padded, into a small buffer (no padded copy of the whole input). Blocks
    are sized for their columns and ``out_width`` numbers of results per pixel. With
    ``ones``, the matrix has a last column of ones."""

    def __init__(self, x: np.ndarray, stride: int, origin: int, runs: list, ntaps: int,
                 reach: int, ho: int, wo: int, out_width: int, ones: bool = False):
        self.x, self.stride, self.origin, self.runs, self.reach = x, stride, origin, runs, reach
        self.k = ntaps * x.shape[2]
        self.ones = ones
        self.nr, self.nc = _tile(ho, wo, (self.k + out_width) * x.itemsize)
        self.blocks = _tiles(ho, wo, self.nr, self.nc)

    def buffers(self) -> tuple[np.ndarray, np.ndarray]:
        x, s, nr, nc = self.x, self.stride, self.nr, self.nc
        span_r, span_c = s * (nr - 1) + self.reach, s * (nc - 1) + self.reach
        return (_gather_buffer(nr * nc, self.k, self.ones, x.dtype),
                np.empty(span_r * span_c * x.shape[2], x.dtype))

    def gather(self, block: tuple[int, int, int, int], buffers: tuple) -> np.ndarray:
        x, stride, reach, k = self.x, self.stride, self.reach, self.k
        buf, slab_buf = buffers
        c, item = x.shape[2], x.itemsize
        r0, r1, c0, c1 = block
        y0, x0 = r0 * stride + self.origin, c0 * stride + self.origin
        slab = _take(x, y0, y0 + stride * (r1 - r0 - 1) + reach,
                     x0, x0 + stride * (c1 - c0 - 1) + reach, slab_buf)
        sr, sp, _ = slab.strides
        cols = buf[: (r1 - r0) * (c1 - c0)]
        view = cols[:, :k].reshape(r1 - r0, c1 - c0, k)
        for dy, dx, n, i in self.runs:
            view[:, :, i * c : (i + n) * c] = as_strided(
                slab[dy, dx:],
                shape=(r1 - r0, c1 - c0, n * c),
                strides=(stride * sr, stride * sp, item),
                writeable=False,
            )
        return cols


class _RowGroups:
    """Blocks of output pixels and their gathered row groups: ``blocks`` lists
    (r0, r1, c0, c1) and ``gather(block, buffers)`` returns the
    ((r1-r0+ngroups-1)*(c1-c0), stride*k*C) matrix of one whose row (g, q) holds, for each
    input row y = stride*(first + r0 + g) + i (i < stride) of the zero-padded input, its
    window of k pixels from column stride*q - padding, in ``buffers`` (from ``buffers()``,
    one set per thread). Each input row's windows are gathered once (im2col would copy them
    once per kernel row that reads them). Blocks are sized for their groups and
    2 * ``out_width`` numbers of results per pixel. With ``ones``, the matrix has a last
    column of ones."""

    def __init__(self, x: np.ndarray, stride: int, padding: int, k: int, first: int,
                 ngroups: int, ho: int, wo: int, out_width: int, ones: bool = False):
        self.x, self.stride, self.padding, self.k, self.first = x, stride, padding, k, first
        self.kc = k * x.shape[2]
        self.ones = ones
        self.extra = ngroups - 1  # groups shared with the next block, gathered again
        self.nr, self.nc = _tile(ho, wo, (stride * self.kc + 2 * out_width) * x.itemsize,
                                 self.extra)
        self.blocks = _tiles(ho, wo, self.nr, self.nc)

    def buffers(self) -> tuple[np.ndarray, np.ndarray]:
        x, s, rows, nc = self.x, self.stride, self.nr + self.extra, self.nc
        span_c = s * (nc - 1) + self.k
        return (_gather_buffer(rows * nc, s * self.kc, self.ones, x.dtype),
                np.empty(s * rows * span_c * x.shape[2], x.dtype))

    def gather(self, block: tuple[int, int, int, int], buffers: tuple) -> np.ndarray:
        x, stride, kc = self.x, self.stride, self.kc
        buf, slab_buf = buffers
        item = x.itemsize
        r0, r1, c0, c1 = block
        n = r1 - r0 + self.extra
        y0, x0 = stride * (self.first + r0), stride * c0 - self.padding
        slab = _take(x, y0, y0 + stride * n, x0, x0 + stride * (c1 - c0 - 1) + self.k, slab_buf)
        sr, sp, _ = slab.strides
        cols = buf[: n * (c1 - c0)]
        groups = cols[:, : stride * kc].reshape(n, c1 - c0, stride, kc)
        for i in range(stride):
            groups[:, :, i, :] = as_strided(
                slab[i],
                shape=(n, c1 - c0, kc),
                strides=(stride * sr, stride * sp, item),
                writeable=False,
            )
        return cols


class Conv2d:
    """torch's ``conv2d`` (zero padding, square kernel) on an (H, W, Cin) array.

    ``weight`` is (Cout, Cin, k, k), ``bias`` (Cout,) or None. Output (Ho, Wo, Cout) with
    ``Ho = (H + 2*padding - k) // stride + 1``.

    Two ways to run it. "rows" (many input channels): output row r reads the input rows
    stride*r - padding + ty, ty < k; taken in groups of ``stride`` rows, these are whole
    groups first + r + u (u < ngroups, partly for the first and last), so the windows of
    each input row are gathered once and the output is a sum of ``ngroups`` products, one
    per group offset u, each over a contiguous range of the gathered columns. "im2col" (few
    input channels, e.g. RGB, where those products would be too thin): gather all k*k taps
    per output pixel and run one product.
    """

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, stride: int, padding: int):
        weight, cout, cin, k = _square(weight)
        s, p = int(stride), int(padding)
        self.cin, self.cout, self.k = cin, cout, k
        self.stride, self.padding = s, p
        # rows ordered (ty, tx, ci): row ty of the kernel is one window of k*Cin numbers
        matrix = weight.transpose(2, 3, 1, 0).reshape(k * k * cin, cout)
        bias = None if bias is None else _master(bias)
        # input row s*r - p + ty = s*(first + r + u) + i, with i < s
        self._first, skip = divmod(-p, s)
        self._ngroups = -(-(skip + k) // s)
        parts = []  # (u, first column, last column, first kernel row, last kernel row)
        for u in range(self._ngroups):
            lo, hi = max(0, u * s - skip), min(k, (u + 1) * s - skip)  # kernel rows ty
            parts.append((u, (skip + lo - u * s) * k * cin, (skip + hi - u * s) * k * cin,
                          lo, hi))
        thinnest = min(hi - lo for _, lo, hi, _, _ in parts)
        self.method = "rows" if thinnest >= ROWS_MIN_DEPTH or self._ngroups == 1 else "im2col"
        if self.method == "im2col":
            parts = [(0, 0, k * k * cin, 0, k)]
            self._runs = [(ty, 0, k, ty * k) for ty in range(k)]
        width = parts[0][2] if self.method == "im2col" else s * k * cin  # gathered columns
        # the bias rides on a column of ones after the gathered ones, in a product whose
        # columns end there
        with_bias = [bias is not None and hi == width for _, _, hi, _, _ in parts]
        self._fold = any(with_bias)
        if self._fold:
            with_bias = [i == with_bias.index(True) for i in range(len(parts))]
        matrices = []
        self._parts = []  # (u, first column, last column)
        for (u, lo, hi, ty0, ty1), add_bias in zip(parts, with_bias, strict=True):
            m = matrix[ty0 * k * cin : ty1 * k * cin]
            if add_bias:
                m = np.concatenate([m, _master(bias)[None]])
                hi += 1
            matrices.append(m)
            self._parts.append((u, lo, hi))
        rest = None if bias is None or self._fold else _master(bias)
        self._weights = _PerDtype(*matrices, rest)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = _image(x)
        h, w, cin = x.shape
        if cin != self.cin:
            raise ValueError(f"expected {self.cin} channels, got {cin}")
        k, s, p, cout = self.k, self.stride, self.padding, self.cout
        ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        if ho <= 0 or wo <= 0:
            raise ValueError(f"input {h}x{w} too small for kernel {k} with padding {p}")
        *matrices, bias = self._weights.get(x.dtype)
        out = np.empty((ho, wo, cout), x.dtype)
        if self.method == "rows":
            plan = _RowGroups(x, s, p, k, self._first, self._ngroups, ho, wo, cout, self._fold)
        else:
            plan = _Im2col(x, s, -p, self._runs, k * k, k, ho, wo, cout, self._fold)
        most = plan.nr * plan.nc  # output pixels of the largest block
        biases = None if bias is None else np.tile(bias, (most, 1))  # no broadcasting per row
        parts = list(zip(self._parts, matrices, strict=True))
        dtype = x.dtype

        def worker() -> Callable[[int], None]:
            buffers = plan.buffers()
            res = np.empty((most, cout), dtype) if plan.nc != wo else None
            partial = np.empty((most, cout), dtype) if len(parts) > 1 else None

            def run(i: int) -> None:
                r0, r1, c0, c1 = block = plan.blocks[i]
                cols = plan.gather(block, buffers)
                rows = (r1 - r0) * (c1 - c0)
                # one row split in blocks of columns (very wide images) goes through res
                dst = out[r0:r1].reshape(-1, cout) if res is None else res[:rows]
                for (u, lo, hi), matrix in parts:
                    part = cols[u * (c1 - c0) : u * (c1 - c0) + rows, lo:hi]
                    if u == 0:
                        np.matmul(part, matrix, out=dst)
                    else:  # numpy's product does not accumulate
                        np.matmul(part, matrix, out=partial[:rows])
                        np.add(dst, partial[:rows], out=dst)
                if biases is not None:
                    np.add(dst, biases[:rows], out=dst)
                if res is not None:
                    out[r0:r1, c0:c1] = dst.reshape(r1 - r0, c1 - c0, cout)

            return run

        _parallel(len(plan.blocks), worker)
        return out


class ConvTranspose2d:
    """torch's ``conv_transpose2d`` (square kernel) on an (H, W, Cin) array.

    ``weight`` is (Cin, Cout, k, k), ``bias`` (Cout,) or None. Output (Ho, Wo, Cout) with
    ``Ho = (H - 1)*stride - 2*padding + k + output_padding``.

    Polyphase: output pixel o (per axis) with o + padding = stride*i + t takes input i
    through kernel tap t. Writing o = stride*m + phase, i = m + d: the phase's taps are the
    t = phase + padding - stride*d, a range of offsets d, so each phase is a stride-1
    convolution over the neighbourhood of offsets. Three ways to run it:

    * per phase (stride 2, many output channels): one gathered block of the neighbourhood
      serves the four phases, each a product over its own range of columns (no zero taps);
    * scatter (few output channels, e.g. an RGB output): no gathering; the input times a
      (Cin, taps*phases*Cout) matrix gives every tap's contribution, summed by shifted adds;
    * otherwise one product for all phases, zeros where a phase has no tap.
    """

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, stride: int,
                 padding: int, output_padding: int):
        weight, cin, cout, k = _square(weight)
        s, p = int(stride), int(padding)
        self.cin, self.cout, self.k = cin, cout, k
        self.stride, self.padding, self.output_padding = s, p, int(output_padding)
        # per phase: offset d -> kernel tap t
        phases = [
            {(ph + p - t) // s: t for t in range(k) if (ph + p - t) % s == 0} for ph in range(s)
        ]
        offsets = sorted(set().union(*phases))
        self._dmin, self._dmax = offsets[0], offsets[-1]
        zero = np.zeros((cin, cout), weight.dtype)

        def block(py: int, px: int, dy: int, dx: int) -> np.ndarray:
            ty, tx = phases[py].get(dy), phases[px].get(dx)
            return zero if ty is None or tx is None else weight[:, :, ty, tx]

        bias = None if bias is None else _master(bias)
        big = max(range(s), key=lambda ph: len(phases[ph]))
        nested = s == 2 and set(phases[1 - big]) <= set(phases[big])
        square = [(dy, dx) for dy in offsets for dx in offsets]
        all_phases = [(py, px) for py in range(s) for px in range(s)]
        if s * s * cout * SCATTER_MAX_RATIO <= cin:
            self.method = "scatter"
            # columns (dy, dx, py, px, co)
            matrix = np.concatenate(
                [block(py, px, dy, dx) for dy, dx in square for py, px in all_phases], axis=1)
            self._taps = square
            self._weights = _PerDtype(matrix, None if bias is None else np.tile(bias, s * s))
            return
        if nested and cout >= PHASE_SPLIT_MIN_COUT:
            self.method = "phases"
            # columns: E x A, A x A, A x E, E x E (A the small phase's offsets, E the rest),
            # so that each phase's offsets (B = A + E, or A, per axis) form one column range
            a = sorted(phases[1 - big])
            e = sorted(set(phases[big]) - set(a))
            taps = (
                [(dy, dx) for dy in e for dx in a] + [(dy, dx) for dy in a for dx in a]
                + [(dy, dx) for dy in a for dx in e] + [(dy, dx) for dy in e for dx in e]
            )
            ea, aa, ae = len(e) * len(a), len(a) * len(a), len(a) * len(e)
            ranges = {
                (big, big): (0, len(taps)),
                (big, 1 - big): (0, ea + aa),
                (1 - big, big): (ea, ea + aa + ae),
                (1 - big, 1 - big): (ea, ea + aa),
            }
            groups = []
            for (py, px), (lo, hi) in sorted(ranges.items()):
                matrix = np.concatenate([block(py, px, dy, dx) for dy, dx in taps[lo:hi]])
                groups.append(((py, px), lo, hi, matrix, bias))
        else:
            self.method = "combined"
            # (taps*Cin, phases*Cout), columns of the result ordered (py, px, co)
            taps = square
            matrix = np.concatenate([
                np.concatenate([block(py, px, dy, dx) for py, px in all_phases], axis=1)
                for dy, dx in taps
            ])
            groups = [(None, 0, len(taps), matrix, None if bias is None else np.tile(bias, s * s))]
        self._taps = taps
        self._runs = _runs([(dy - self._dmin, dx - self._dmin) for dy, dx in taps])
        # a product over all the gathered columns takes its bias on a column of ones
        self._fold = bias is not None
        self._groups = []
        matrices, biases = [], []
        for phase, lo, hi, matrix, b in groups:
            whole = (lo, hi) == (0, len(taps))
            if whole and b is not None:
                matrix, b = np.concatenate([matrix, b[None]]), None
            self._groups.append((phase, lo, hi, whole))
            matrices.append(matrix)
            biases.append(b)
        self._weights = _PerDtype(*matrices, *biases)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = _image(x)
        h, w, cin = x.shape
        if cin != self.cin:
            raise ValueError(f"expected {self.cin} channels, got {cin}")
        s = self.stride
        extra = self.k - 2 * self.padding + self.output_padding
        ho, wo = (h - 1) * s + extra, (w - 1) * s + extra
        if ho <= 0 or wo <= 0:
            raise ValueError(f"empty output for input {h}x{w}")
        mh, mw = -(-ho // s), -(-wo // s)  # output pixels per phase (the last ones cropped)
        full = np.empty((mh, s, mw, s, self.cout), x.dtype)
        if self.method == "scatter":
            self._scatter(x, full)
        else:
            self._gather(x, full)
        full = full.reshape(mh * s, mw * s, self.cout)
        if (ho, wo) != (mh * s, mw * s):
            full = np.ascontiguousarray(full[:ho, :wo])
        return full

    def _gather(self, x: np.ndarray, full: np.ndarray) -> None:
        mh, s, mw, _, cout = full.shape
        cin, n = self.cin, len(self._groups)
        arrays = self._weights.get(x.dtype)
        matrices, biases = arrays[:n], arrays[n:]
        width = max(m.shape[1] for m in matrices)
        reach = self._dmax - self._dmin + 1
        plan = _Im2col(x, 1, self._dmin, self._runs, len(self._taps), reach, mh, mw, width,
                       self._fold)
        most = plan.nr * plan.nc  # output pixels of the largest block
        tiled = [None if b is None else np.tile(b, (most, 1)) for b in biases]
        groups = list(zip(self._groups, matrices, tiled, strict=True))
        dtype = x.dtype

        def worker() -> Callable[[int], None]:
            buffers = plan.buffers()
            res = np.empty(most * width, dtype)

            def run(i: int) -> None:
                r0, r1, c0, c1 = block = plan.blocks[i]
                cols = plan.gather(block, buffers)
                shape = (r1 - r0, c1 - c0)
                for (phase, lo, hi, whole), matrix, bias in groups:
                    part = cols if whole else cols[:, lo * cin : hi * cin]
                    dst = res[: cols.shape[0] * matrix.shape[1]].reshape(-1, matrix.shape[1])
                    np.matmul(part, matrix, out=dst)
                    if bias is not None:
                        np.add(dst, bias[: dst.shape[0]], out=dst)
                    if phase is None:
                        full[r0:r1, :, c0:c1] = dst.reshape(*shape, s, s, cout).transpose(
                            0, 2, 1, 3, 4)
                    else:
                        full[r0:r1, phase[0], c0:c1, phase[1]] = dst.reshape(*shape, cout)

            return run

        _parallel(len(plan.blocks), worker)

    def _scatter(self, x: np.ndarray, full: np.ndarray) -> None:
        mh, s, mw, _, cout = full.shape
        h, w, cin = x.shape
        matrix, bias = self._weights.get(x.dtype)
        group = s * s * cout  # one tap's columns: (py, px, co)
        dmin, dmax = self._dmin, self._dmax
        span = dmax - dmin
        cols = matrix.shape[1]
        # blocks of nr phase rows need the products of nr + span input rows
        nr = _block_rows(mh, BLOCK_BYTES // max(1, w * cols * x.itemsize) - span)
        starts = range(0, mh, nr)
        row_bias = None if bias is None else np.tile(bias, mw)  # a row of phase pixels
        taps = list(enumerate(self._taps))
        dtype = x.dtype

        def worker() -> Callable[[int], None]:
            prod_buf = np.empty((nr + span) * w * cols, dtype)
            acc_buf = np.empty(nr * mw * group, dtype)

            def run(i: int) -> None:
                m0 = starts[i]
                m1 = min(m0 + nr, mh)
                ya, yb = max(0, m0 + dmin), min(h, m1 + dmax)  # input rows involved
                acc = acc_buf[: (m1 - m0) * mw * group].reshape(m1 - m0, mw, group)
                if row_bias is None:
                    acc.fill(0)
                else:
                    acc.reshape(m1 - m0, -1)[...] = row_bias
                if ya < yb:
                    prod = prod_buf[: (yb - ya) * w * cols].reshape(yb - ya, w, cols)
                    np.matmul(x[ya:yb].reshape(-1, cin), matrix, out=prod.reshape(-1, cols))
                    for j, (dy, dx) in taps:
                        # phase pixel (m, q) takes input (m + dy, q + dx), where inside x
                        a, b = max(m0, ya - dy), min(m1, yb - dy)
                        l, r = max(0, -dx), min(mw, w - dx)
                        if a < b and l < r:
                            acc[a - m0 : b - m0, l:r] += prod[
                                a + dy - ya : b + dy - ya, l + dx : r + dx,
                                j * group : (j + 1) * group]
                full[m0:m1] = acc.reshape(m1 - m0, mw, s, s, cout).transpose(0, 2, 1, 3, 4)

            return run

        _parallel(len(starts), worker)


class GDN:
    """Generalized divisive normalization per position of an (H, W, C) array:
    ``y = x / sqrt(beta + gamma @ x**2)``, or ``x * sqrt(...)`` if ``inverse``, i.e.
    ``norm[c] = beta[c] + sum_j gamma[c, j] * x[j]**2``.

    ``beta`` (C,) and ``gamma`` (C, C) are the effective (reparametrized) parameters. Blocks
    of GDN_BLOCK positions: squares (with a column of ones), one product by
    ``[gamma.T; beta]`` (beta added in the product), root, quotient or product.
    """

    def __init__(self, beta: np.ndarray, gamma: np.ndarray, inverse: bool):
        beta, gamma = _master(beta), _master(gamma)
        c = beta.shape[0]
        if gamma.shape != (c, c):
            raise ValueError(f"gamma must be ({c}, {c}), got {gamma.shape}")
        self.channels = c
        self.inverse = bool(inverse)
        self._weights = _PerDtype(np.concatenate([gamma.T, beta[None]]))

    def __call__(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """GDN of ``x``, written to ``out`` if given (same shape and dtype, C-contiguous;
        ``out=x`` works in place and saves the time of a fresh array)."""
        x = _image(x)
        c = self.channels
        if x.shape[2] != c:
            raise ValueError(f"expected {c} channels, got {x.shape[2]}")
        if out is None:
            out = np.empty_like(x)
        elif out.shape != x.shape or out.dtype != x.dtype or not out.flags.c_contiguous:
            raise ValueError("out must be a C-contiguous array of the input's shape and dtype")
        (matrix,) = self._weights.get(x.dtype)
        rows, dst = x.reshape(-1, c), out.reshape(-1, c)
        block = max(1, min(GDN_BLOCK, rows.shape[0]))
        starts = range(0, rows.shape[0], block)
        inverse, dtype = self.inverse, x.dtype

        def worker() -> Callable[[int], None]:
            square = np.ones((block, c + 1), dtype)  # the last column multiplies beta
            norm = np.empty((block, c), dtype)

            def run(i: int) -> None:
                start = starts[i]
                part = rows[start : start + block]
                k = part.shape[0]
                sq, nm = square[:k], norm[:k]
                np.multiply(part, part, out=sq[:, :c])
                np.matmul(sq, matrix, out=nm)
                np.sqrt(nm, out=nm)
                if inverse:
                    np.multiply(part, nm, out=dst[start : start + k])
                else:
                    np.divide(part, nm, out=dst[start : start + k])

            return run

        _parallel(len(starts), worker)
        return out
