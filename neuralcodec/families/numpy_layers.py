"""Convolutions and GDN on NumPy arrays: the transforms' inference without torch.

Layout: one image as an (H, W, C) array, channels last and C-contiguous, no batch axis. A
block of pixels is then a plain (pixels, channels) matrix, so a layer is a few large matrix
products (BLAS, which runs them on all cores) over blocks of output rows, plus copies that
move runs of whole pixels. Weights come in torch's layout and are rearranged once, when a
layer is built, because a layer is called many times.

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
once and kept). Buffers are bounded per block (``BLOCK_BYTES``), whatever the image size.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

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

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


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


def _tile(ho: int, wo: int, pixel_bytes: int) -> tuple[int, int]:
    """Rows and columns of output pixels per block, for a block of about BLOCK_BYTES."""
    per_row = max(1, wo) * pixel_bytes
    if per_row <= BLOCK_BYTES:
        return max(1, min(ho, BLOCK_BYTES // per_row)), wo
    return 1, max(1, min(wo, BLOCK_BYTES // pixel_bytes))


def _gather_buffer(rows: int, width: int, ones: bool, dtype: np.dtype) -> np.ndarray:
    """A (rows, width) buffer for gathered columns, or with ``ones`` a (rows, width + 1)
    view whose last column is ones (a bias row in the weights adds the bias in the product);
    rows padded to keep their alignment."""
    if not ones:
        return np.empty((rows, width), dtype)
    buf = np.zeros((rows, width + 16), dtype)
    buf[:, width] = 1
    return buf[:, : width + 1]


def _im2col_blocks(x: np.ndarray, stride: int, origin: int, runs: list, ntaps: int,
                   reach: int, ho: int, wo: int, out_width: int, ones: bool = False):
    """Yield (r0, r1, c0, c1, cols) for blocks of output pixels, ``cols`` the
    ((r1-r0)*(c1-c0), ntaps*C) im2col matrix of the block: output pixel (r, q) takes, for
    each run (dy, dx, n, i), the n*C numbers of the zero-padded input from pixel
    (r*stride + origin + dy, q*stride + origin + dx) on, at columns i*C onwards. ``reach``
    is the extent of the runs (max dy + 1, max dx + n). Each block's rows of the input are
    first copied, padded, into a small buffer (no padded copy of the whole input). Blocks
    are sized for their columns and ``out_width`` numbers of results per pixel. With
    ``ones``, ``cols`` has a last column of ones."""
    c = x.shape[2]
    k = ntaps * c
    item = x.itemsize
    nr, nc = _tile(ho, wo, (k + out_width) * item)
    buf = _gather_buffer(nr * nc, k, ones, x.dtype)
    span_r, span_c = stride * (nr - 1) + reach, stride * (nc - 1) + reach
    slab_buf = np.empty(span_r * span_c * c, x.dtype)
    for r0 in range(0, ho, nr):
        r1 = min(r0 + nr, ho)
        y0 = r0 * stride + origin
        for c0 in range(0, wo, nc):
            c1 = min(c0 + nc, wo)
            x0 = c0 * stride + origin
            slab = _take(x, y0, y0 + stride * (r1 - r0 - 1) + reach,
                         x0, x0 + stride * (c1 - c0 - 1) + reach, slab_buf)
            sr, sp, _ = slab.strides
            block = buf[: (r1 - r0) * (c1 - c0)]
            cols = block[:, :k].reshape(r1 - r0, c1 - c0, k)
            for dy, dx, n, i in runs:
                window = as_strided(
                    slab[dy, dx:],
                    shape=(r1 - r0, c1 - c0, n * c),
                    strides=(stride * sr, stride * sp, item),
                    writeable=False,
                )
                cols[:, :, i * c : (i + n) * c] = window
            yield r0, r1, c0, c1, block


def _row_group_blocks(x: np.ndarray, stride: int, padding: int, k: int, first: int,
                      ngroups: int, ho: int, wo: int, out_width: int, ones: bool = False):
    """Yield (r0, r1, c0, c1, groups) for blocks of output pixels, ``groups`` the
    ((r1-r0+ngroups-1)*(c1-c0), stride*k*C) matrix whose row (g, q) holds, for each input
    row y = stride*(first + r0 + g) + i (i < stride) of the zero-padded input, its window of
    k pixels from column stride*q - padding. Each input row's windows are gathered once
    (im2col would copy them once per kernel row that reads them). Blocks are sized for
    their groups and 2 * ``out_width`` numbers of results per pixel. With ``ones``,
    ``groups`` has a last column of ones."""
    c = x.shape[2]
    kc = k * c
    item = x.itemsize
    nr, nc = _tile(ho, wo, (stride * kc + 2 * out_width) * item)
    extra = ngroups - 1  # groups shared with the next block, gathered again
    if nr > 1:
        nr = max(1, min(ho, nr - extra))
    buf = _gather_buffer((nr + extra) * nc, stride * kc, ones, x.dtype)
    span_c = stride * (nc - 1) + k
    slab_buf = np.empty(stride * (nr + extra) * span_c * c, x.dtype)
    for r0 in range(0, ho, nr):
        r1 = min(r0 + nr, ho)
        n = r1 - r0 + extra
        y0 = stride * (first + r0)
        for c0 in range(0, wo, nc):
            c1 = min(c0 + nc, wo)
            x0 = stride * c0 - padding
            slab = _take(x, y0, y0 + stride * n, x0, x0 + stride * (c1 - c0 - 1) + k, slab_buf)
            sr, sp, _ = slab.strides
            block = buf[: n * (c1 - c0)]
            groups = block[:, : stride * kc].reshape(n, c1 - c0, stride, kc)
            for i in range(stride):
                groups[:, :, i, :] = as_strided(
                    slab[i],
                    shape=(n, c1 - c0, kc),
                    strides=(stride * sr, stride * sp, item),
                    writeable=False,
                )
            yield r0, r1, c0, c1, block


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
        res = partial = biases = None
        if self.method == "rows":
            blocks = _row_group_blocks(x, s, p, k, self._first, self._ngroups, ho, wo, cout,
                                       self._fold)
        else:
            blocks = _im2col_blocks(x, s, -p, self._runs, k * k, k, ho, wo, cout, self._fold)
        for r0, r1, c0, c1, cols in blocks:
            rows = (r1 - r0) * (c1 - c0)
            if c1 - c0 == wo:
                dst = out[r0:r1].reshape(-1, cout)
            else:  # one row split in blocks of columns (very wide images)
                if res is None:
                    res = np.empty((rows, cout), x.dtype)
                dst = res[:rows]
            for (u, lo, hi), matrix in zip(self._parts, matrices, strict=True):
                part = cols[u * (c1 - c0) : u * (c1 - c0) + rows, lo:hi]
                if u == 0:
                    np.matmul(part, matrix, out=dst)
                else:  # numpy's product does not accumulate
                    if partial is None:
                        partial = np.empty((rows, cout), x.dtype)
                    np.matmul(part, matrix, out=partial[:rows])
                    np.add(dst, partial[:rows], out=dst)
            if bias is not None:
                if biases is None:
                    biases = np.tile(bias, (rows, 1))  # no broadcasting per row
                np.add(dst, biases[:rows], out=dst)
            if c1 - c0 != wo:
                out[r0:r1, c0:c1] = dst.reshape(r1 - r0, c1 - c0, cout)
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
        res = None
        tiled: list[np.ndarray | None] = []
        reach = self._dmax - self._dmin + 1
        for r0, r1, c0, c1, cols in _im2col_blocks(x, 1, self._dmin, self._runs,
                                                    len(self._taps), reach, mh, mw, width,
                                                    self._fold):
            shape = (r1 - r0, c1 - c0)
            if res is None:
                res = np.empty(cols.shape[0] * width, x.dtype)
                tiled = [None if b is None else np.tile(b, (cols.shape[0], 1)) for b in biases]
            for (phase, lo, hi, whole), matrix, bias in zip(self._groups, matrices, tiled,
                                                             strict=True):
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

    def _scatter(self, x: np.ndarray, full: np.ndarray) -> None:
        mh, s, mw, _, cout = full.shape
        h, w, cin = x.shape
        matrix, bias = self._weights.get(x.dtype)
        group = s * s * cout  # one tap's columns: (py, px, co)
        dmin, dmax = self._dmin, self._dmax
        span = dmax - dmin
        # blocks of nr phase rows need the products of nr + span input rows
        nr = max(1, BLOCK_BYTES // max(1, w * matrix.shape[1] * x.itemsize) - span)
        nr = min(nr, mh)
        prod_buf = np.empty((nr + span) * w * matrix.shape[1], x.dtype)
        acc_buf = np.empty(nr * mw * group, x.dtype)
        row_bias = None if bias is None else np.tile(bias, mw)  # a row of phase pixels
        for m0 in range(0, mh, nr):
            m1 = min(m0 + nr, mh)
            ya, yb = max(0, m0 + dmin), min(h, m1 + dmax)  # input rows involved
            acc = acc_buf[: (m1 - m0) * mw * group].reshape(m1 - m0, mw, group)
            if row_bias is None:
                acc.fill(0)
            else:
                acc.reshape(m1 - m0, -1)[...] = row_bias
            if ya < yb:
                prod = prod_buf[: (yb - ya) * w * matrix.shape[1]].reshape(yb - ya, w, -1)
                np.matmul(x[ya:yb].reshape(-1, cin), matrix,
                          out=prod.reshape(-1, matrix.shape[1]))
                for j, (dy, dx) in enumerate(self._taps):
                    # phase pixel (m, q) takes input (m + dy, q + dx), where inside x
                    a, b = max(m0, ya - dy), min(m1, yb - dy)
                    l, r = max(0, -dx), min(mw, w - dx)
                    if a < b and l < r:
                        acc[a - m0 : b - m0, l:r] += prod[
                            a + dy - ya : b + dy - ya, l + dx : r + dx,
                            j * group : (j + 1) * group]
            full[m0:m1] = acc.reshape(m1 - m0, mw, s, s, cout).transpose(0, 2, 1, 3, 4)


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
        square = np.ones((block, c + 1), x.dtype)  # the last column multiplies beta
        norm = np.empty((block, c), x.dtype)
        for start in range(0, rows.shape[0], block):
            part = rows[start : start + block]
            k = part.shape[0]
            sq, nm = square[:k], norm[:k]
            np.multiply(part, part, out=sq[:, :c])
            np.matmul(sq, matrix, out=nm)
            np.sqrt(nm, out=nm)
            if self.inverse:
                np.multiply(part, nm, out=dst[start : start + k])
            else:
                np.divide(part, nm, out=dst[start : start + k])
        return out
