"""The NumPy layers (convolutions, transposed convolutions, GDN on (H, W, C) arrays) against
torch: float32 to rounding, float64 on integer-valued data exactly, and torch-free import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neuralcodec.families import numpy_layers
from neuralcodec.families.numpy_layers import GDN, Conv2d, ConvTranspose2d

SIZES = [(7, 9), (13, 6), (1, 1), (2, 3)]
CONV = [(5, 2, 2), (3, 1, 1), (5, 1, 2), (1, 1, 0), (3, 2, 1), (1, 2, 0), (2, 2, 0)]  # k, s, p
# (k, stride, padding, output_padding); (5, 2, 2, 1) is the synthesis' deconv
DECONV = [(5, 2, 2, 1), (5, 2, 2, 0), (5, 1, 2, 0), (3, 1, 1, 0), (3, 2, 1, 1), (4, 2, 1, 0),
          (4, 2, 1, 1)]
# (Cin, Cout): for stride 2, (8, 24) runs per phase, (48, 3) scatters, (8, 3) one product
CHANNELS = [(3, 8), (8, 24), (48, 3), (8, 3)]


@pytest.fixture(params=["rows", "im2col"])
def conv_method(request, monkeypatch):
    """Run a test with convolutions forced to one method (where the kernel allows it)."""
    monkeypatch.setattr(numpy_layers, "ROWS_MIN_DEPTH", 0 if request.param == "rows" else 10**9)
    return request.param


def check_method(layer: Conv2d, method: str) -> None:
    assert layer.method == method or (layer.method == "rows" and layer._ngroups == 1)


def to_torch(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]


def from_torch(t: torch.Tensor) -> np.ndarray:
    return t[0].permute(1, 2, 0).numpy()


def assert_close32(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.dtype == np.float32 and got.flags.c_contiguous
    assert got.shape == expected.shape
    scale = max(float(np.abs(expected).max()), 1e-30)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * scale)


def conv_ref(x, w, b, s, p):
    return from_torch(F.conv2d(to_torch(x), torch.from_numpy(w),
                               None if b is None else torch.from_numpy(b), stride=s, padding=p))


def deconv_ref(x, w, b, s, p, op):
    return from_torch(F.conv_transpose2d(to_torch(x), torch.from_numpy(w),
                                         None if b is None else torch.from_numpy(b),
                                         stride=s, padding=p, output_padding=op))


def valid_conv(h, w, k, p):
    return h + 2 * p >= k and w + 2 * p >= k


def valid_deconv(h, w, k, s, p, op):
    return (h - 1) * s - 2 * p + k + op > 0 and (w - 1) * s - 2 * p + k + op > 0


@pytest.mark.parametrize("k,s,p", CONV)
@pytest.mark.parametrize("cin,cout", CHANNELS)
def test_conv2d_float32_matches_torch(k, s, p, cin, cout, conv_method):
    rng = np.random.default_rng(k * 100 + s * 10 + p + cin)
    w = rng.standard_normal((cout, cin, k, k)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    layer, nobias = Conv2d(w, b, s, p), Conv2d(w, None, s, p)
    check_method(layer, conv_method)
    for h, wd in SIZES:
        if not valid_conv(h, wd, k, p):
            continue
        x = rng.standard_normal((h, wd, cin)).astype(np.float32)
        expected = conv_ref(x, w, b, s, p)
        assert expected.shape == ((h + 2 * p - k) // s + 1, (wd + 2 * p - k) // s + 1, cout)
        assert_close32(layer(x), expected)
        assert_close32(nobias(x), conv_ref(x, w, None, s, p))


@pytest.mark.parametrize("k,s,p,op", DECONV)
@pytest.mark.parametrize("cin,cout", CHANNELS)
def test_conv_transpose2d_float32_matches_torch(k, s, p, op, cin, cout):
    rng = np.random.default_rng(k * 1000 + s * 100 + p * 10 + op + cin)
    w = rng.standard_normal((cin, cout, k, k)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    layer, nobias = ConvTranspose2d(w, b, s, p, op), ConvTranspose2d(w, None, s, p, op)
    for h, wd in SIZES:
        if not valid_deconv(h, wd, k, s, p, op):
            continue
        x = rng.standard_normal((h, wd, cin)).astype(np.float32)
        expected = deconv_ref(x, w, b, s, p, op)
        assert expected.shape == ((h - 1) * s - 2 * p + k + op, (wd - 1) * s - 2 * p + k + op,
                                  cout)
        assert_close32(layer(x), expected)
        assert_close32(nobias(x), deconv_ref(x, w, None, s, p, op))


def test_conv2d_runs_both_ways():
    rows = Conv2d(np.zeros((128, 128, 5, 5), np.float32), None, 2, 2)
    im2col = Conv2d(np.zeros((128, 3, 5, 5), np.float32), None, 2, 2)
    assert (rows.method, im2col.method) == ("rows", "im2col")


def test_conv_transpose2d_runs_all_three_ways():
    methods = {ConvTranspose2d(np.zeros((cin, cout, 5, 5), np.float32), None, 2, 2, 1).method
               for cin, cout in CHANNELS}
    assert methods == {"phases", "scatter", "combined"}


def integer_data(rng, shape, bits):
    return rng.integers(-(2**bits), 2**bits + 1, size=shape).astype(np.float64)


@pytest.mark.parametrize("k,s,p", CONV)
@pytest.mark.parametrize("cin,cout", CHANNELS)
def test_conv2d_float64_integers_exact(k, s, p, cin, cout, conv_method):
    rng = np.random.default_rng(7 + k + s + p + cin)
    w, b = integer_data(rng, (cout, cin, k, k), 14), integer_data(rng, (cout,), 30)
    layer = Conv2d(w, b, s, p)
    check_method(layer, conv_method)
    for h, wd in SIZES + [(17, 12)]:
        if not valid_conv(h, wd, k, p):
            continue
        x = integer_data(rng, (h, wd, cin), 20)
        got = layer(x)
        assert got.dtype == np.float64
        assert np.array_equal(got, conv_ref(x, w, b, s, p))


@pytest.mark.parametrize("k,s,p,op", DECONV)
@pytest.mark.parametrize("cin,cout", CHANNELS)
def test_conv_transpose2d_float64_integers_exact(k, s, p, op, cin, cout):
    rng = np.random.default_rng(11 + k + s + p + op + cin)
    w, b = integer_data(rng, (cin, cout, k, k), 14), integer_data(rng, (cout,), 30)
    layer = ConvTranspose2d(w, b, s, p, op)
    for h, wd in SIZES + [(9, 14)]:
        if not valid_deconv(h, wd, k, s, p, op):
            continue
        x = integer_data(rng, (h, wd, cin), 20)
        got = layer(x)
        assert got.dtype == np.float64
        assert np.array_equal(got, deconv_ref(x, w, b, s, p, op))


@pytest.mark.parametrize("block_bytes", [1, 3000, 40000, 200000])
def test_small_blocks_split_rows_and_columns(monkeypatch, block_bytes, conv_method):
    """Tiny block budgets: blocks of a few rows, of single rows split in columns."""
    monkeypatch.setattr(numpy_layers, "BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(block_bytes)
    x = integer_data(rng, (11, 23, 48), 20)
    w, b = integer_data(rng, (24, 48, 5, 5), 14), integer_data(rng, (24,), 20)
    for k, s, p in CONV:
        layer = Conv2d(w[:, :, :k, :k], b, s, p)
        check_method(layer, conv_method)
        assert np.array_equal(layer(x), conv_ref(x, w[:, :, :k, :k], b, s, p))
    for cout in (24, 3):  # per phase, scatter
        w, b = integer_data(rng, (48, cout, 5, 5), 14), integer_data(rng, (cout,), 20)
        layer = ConvTranspose2d(w, b, 2, 2, 1)
        assert np.array_equal(layer(x), deconv_ref(x, w, b, 2, 2, 1)), layer.method


def test_synthesis_and_analysis_shapes():
    """The transforms' layers at their widths, on a small image."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 5, 192)).astype(np.float32)
    for cin, cout in [(192, 128), (128, 128), (128, 3)]:
        w = (rng.standard_normal((cin, cout, 5, 5)) * 0.05).astype(np.float32)
        b = rng.standard_normal(cout).astype(np.float32)
        out = ConvTranspose2d(w, b, 2, 2, 1)(x)
        assert_close32(out, deconv_ref(x, w, b, 2, 2, 1))
        assert out.shape == (2 * x.shape[0], 2 * x.shape[1], cout)
        x = out
    for cin, cout in [(3, 128), (128, 128), (128, 192)]:
        w = (rng.standard_normal((cout, cin, 5, 5)) * 0.05).astype(np.float32)
        b = rng.standard_normal(cout).astype(np.float32)
        out = Conv2d(w, b, 2, 2)(x)
        assert_close32(out, conv_ref(x, w, b, 2, 2))
        x = out
    assert x.shape == (6, 5, 192)


def test_transform_widths_float64_integers_exact():
    """The exact integer network's case: 2**20 activations, 2**14 weights, 128 channels."""
    rng = np.random.default_rng(4)
    x = integer_data(rng, (7, 6, 128), 20)
    for cout in (128, 3):
        w, b = integer_data(rng, (128, cout, 5, 5), 14), integer_data(rng, (cout,), 30)
        assert np.array_equal(ConvTranspose2d(w, b, 2, 2, 1)(x), deconv_ref(x, w, b, 2, 2, 1))
    for cin, cout in [(3, 128), (128, 192)]:
        x = integer_data(rng, (13, 10, cin), 20)
        w, b = integer_data(rng, (cout, cin, 5, 5), 14), integer_data(rng, (cout,), 30)
        assert np.array_equal(Conv2d(w, b, 2, 2)(x), conv_ref(x, w, b, 2, 2))


def test_weights_follow_the_input_dtype():
    rng = np.random.default_rng(5)
    w64 = integer_data(rng, (4, 6, 3, 3), 10)
    layer = Conv2d(w64.astype(np.float32), None, 1, 1)  # float32 weights, float64 input
    x = integer_data(rng, (5, 4, 6), 20)
    assert np.array_equal(layer(x), conv_ref(x, w64, None, 1, 1))
    x32 = rng.standard_normal((5, 4, 6)).astype(np.float32)
    assert_close32(Conv2d(w64, None, 1, 1)(x32), conv_ref(x32, w64.astype(np.float32), None,
                                                          1, 1))
    with pytest.raises(TypeError):
        layer(np.zeros((5, 4, 6), np.float16))


def gdn_ref(x: np.ndarray, beta: np.ndarray, gamma: np.ndarray, inverse: bool) -> np.ndarray:
    t = to_torch(x)
    c = t.shape[1]
    norm = F.conv2d(t * t, torch.from_numpy(gamma).reshape(c, c, 1, 1), torch.from_numpy(beta))
    return from_torch(t * (torch.sqrt(norm) if inverse else torch.rsqrt(norm)))


@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gdn_matches_formula(inverse, dtype, monkeypatch):
    monkeypatch.setattr(numpy_layers, "GDN_BLOCK", 16)  # several blocks and a partial one
    rng = np.random.default_rng(int(inverse))
    c = 12
    beta = (rng.random(c) + 0.1).astype(dtype)
    gamma = (rng.random((c, c)) * 0.3).astype(dtype)
    layer = GDN(beta, gamma, inverse)
    for h, w in SIZES + [(9, 7)]:
        x = (rng.standard_normal((h, w, c)) * 3).astype(dtype)
        got, expected = layer(x), gdn_ref(x, beta, gamma, inverse)
        assert got.dtype == dtype and got.shape == x.shape and got.flags.c_contiguous
        np.testing.assert_allclose(got, expected, rtol=1e-5 if dtype == np.float32 else 1e-12,
                                   atol=0)
        copy = x.copy()
        assert layer(copy, out=copy) is copy  # in place
        np.testing.assert_array_equal(copy, got)


@pytest.fixture
def thread_counts():
    """Thread counts to run at; the default count is restored afterwards."""
    yield (1, 2, 3)
    numpy_layers.set_threads(None)


def at_thread_counts(counts, layer, x: np.ndarray) -> np.ndarray:
    """``layer(x)`` at each thread count, asserting the results are bit-identical."""
    results = []
    for n in counts:
        numpy_layers.set_threads(n)
        assert numpy_layers.threads() == n
        results.append(layer(x.copy()))
    for got in results[1:]:
        assert got.dtype == results[0].dtype and np.array_equal(got, results[0])
    return results[0]


@pytest.mark.parametrize("block_bytes", [3000, 40000, None])
@pytest.mark.parametrize("shape", [(11, 23), (40, 36), (1, 2), (70, 5)])
def test_results_do_not_depend_on_thread_count(thread_counts, monkeypatch, block_bytes, shape):
    """Every method, float32, blocks of several rows or of columns: bit-identical results
    at 1, 2 and 3 threads, and close to torch's."""
    if block_bytes is not None:
        monkeypatch.setattr(numpy_layers, "BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(sum(shape))
    h, w = shape
    for cin, cout in [(128, 64), (3, 16)]:  # rows, im2col
        x = rng.standard_normal((h, w, cin)).astype(np.float32)
        wt = (rng.standard_normal((cout, cin, 5, 5)) * 0.05).astype(np.float32)
        b = rng.standard_normal(cout).astype(np.float32)
        for k, s, p in [(5, 2, 2), (3, 1, 1)]:
            layer = Conv2d(wt[:, :, :k, :k], b, s, p)
            assert layer.method == ("rows" if cin == 128 else "im2col")
            got = at_thread_counts(thread_counts, layer, x)
            assert_close32(got, conv_ref(x, wt[:, :, :k, :k], b, s, p))
    methods = set()
    for cin, cout in [(32, 24), (48, 3), (8, 3)]:  # phases, scatter, combined
        x = rng.standard_normal((h, w, cin)).astype(np.float32)
        wt = (rng.standard_normal((cin, cout, 5, 5)) * 0.05).astype(np.float32)
        b = rng.standard_normal(cout).astype(np.float32)
        layer = ConvTranspose2d(wt, b, 2, 2, 1)
        methods.add(layer.method)
        got = at_thread_counts(thread_counts, layer, x)
        assert_close32(got, deconv_ref(x, wt, b, 2, 2, 1))
    assert methods == {"phases", "scatter", "combined"}
    monkeypatch.setattr(numpy_layers, "GDN_BLOCK", 16 if block_bytes == 3000 else 2048)
    c = 24
    beta = (rng.random(c) + 0.1).astype(np.float32)
    gamma = (rng.random((c, c)) * 0.3).astype(np.float32)
    x = (rng.standard_normal((h * 8, w * 8, c)) * 3).astype(np.float32)
    for inverse in (False, True):
        got = at_thread_counts(thread_counts, GDN(beta, gamma, inverse), x)
        np.testing.assert_allclose(got, gdn_ref(x, beta, gamma, inverse), rtol=1e-5)


def test_threads_float64_integers_exact(thread_counts):
    """The exact integer path stays exact on several threads."""
    rng = np.random.default_rng(6)
    x = integer_data(rng, (30, 26, 128), 20)
    w, b = integer_data(rng, (128, 128, 5, 5), 14), integer_data(rng, (128,), 30)
    expected = conv_ref(x, w, b, 2, 2)
    assert np.array_equal(at_thread_counts(thread_counts, Conv2d(w, b, 2, 2), x), expected)
    for cout in (128, 3):
        w, b = integer_data(rng, (128, cout, 5, 5), 14), integer_data(rng, (cout,), 30)
        got = at_thread_counts(thread_counts, ConvTranspose2d(w, b, 2, 2, 1), x)
        assert np.array_equal(got, deconv_ref(x, w, b, 2, 2, 1))


def test_set_threads(thread_counts):
    with pytest.raises(ValueError):
        numpy_layers.set_threads(0)
    numpy_layers.set_threads(None)
    assert numpy_layers.threads() >= 1
    layer = GDN(np.ones(4, np.float32), np.eye(4, dtype=np.float32), False)
    x = np.ones((64, 64, 4), np.float32)
    for n in (2, 4, 1, 3):  # the pool follows the count
        numpy_layers.set_threads(n)
        np.testing.assert_allclose(layer(x), 1 / np.sqrt(2), rtol=1e-6)


def test_errors_in_threads_propagate(thread_counts, monkeypatch):
    numpy_layers.set_threads(3)
    layer = GDN(np.ones(4, np.float32), np.eye(4, dtype=np.float32), False)

    def broken(*args, **kwargs):
        raise RuntimeError("broken")

    monkeypatch.setattr(numpy_layers.np, "sqrt", broken)
    with pytest.raises(RuntimeError, match="broken"):
        layer(np.ones((64, 64, 4), np.float32))


def test_import_does_not_load_torch():
    code = ("import sys; import neuralcodec.families.numpy_layers; "
            "sys.exit('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0, "importing numpy_layers loads torch" + proc.stderr
