"""The residual layer's exact codec (issue 41): round trips within K, the same payload on
any thread count, damaged payloads refused, the 2**53 bound enforced at load."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuralcodec.errors import AecError, CorruptFileError
from neuralcodec.residual.context import TWO_BY_TWO, IntegerFeatures, passes
from neuralcodec.residual.exact import BoundError
from neuralcodec.residual.layer import (
    DEFAULT_RESIDUAL_MODEL,
    MODEL_CHANNELS,
    ResidualCodec,
    export_arrays,
    load_residual_model,
)
from neuralcodec.residual.model import PassNet, ResidualModel

from .helpers import photo_like, threads


def float_model(seed: int = 0, hidden: int = 8) -> ResidualModel:
    """Small random float networks of the shipped design (x̂ radius 2, 2×2 passes)."""
    rng = np.random.default_rng(seed)
    probe = IntegerFeatures(np.zeros((1, 1, MODEL_CHANNELS), np.uint8), 2)
    nets = {}
    for p in passes(MODEL_CHANNELS):
        n = len(probe.scales(p))

        def w(*shape: int, s: float = 0.3) -> np.ndarray:
            return rng.normal(0, s, shape).astype(np.float32)

        nets[p] = PassNet([w(n, hidden), w(hidden, hidden), w(hidden, 2)],
                          [w(hidden), w(hidden), np.array([0, 1], np.float32)],
                          (w(n, 2, s=0.1), np.array([0, 0.5], np.float32)))
    return ResidualModel(TWO_BY_TWO, nets, 2)


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    return export_arrays(float_model())


@pytest.fixture(scope="module")
def codec(arrays) -> ResidualCodec:
    return ResidualCodec.from_arrays(arrays)


def pair(shape: tuple[int, ...], seed: int, spread: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """An image and a reconstruction within ``spread`` of it (a few far off: escapes)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, shape).astype(np.uint8)
    xhat = np.clip(x.astype(int) + rng.integers(-spread, spread + 1, shape), 0, 255)
    xhat.reshape(-1)[:: 7] = 255 - x.reshape(-1)[:: 7]
    return x, xhat.astype(np.uint8)


@pytest.mark.parametrize("shape", [(13, 10, 3), (7, 5, 1), (1, 1, 3), (1, 1, 1), (1, 9, 3),
                                   (6, 1, 1)])
@pytest.mark.parametrize("k", range(9))
def test_round_trip_exact_at_0_and_within_k(codec, shape, k):
    x, xhat = pair(shape, k)
    payload = codec.encode(x, xhat, k, 70)
    out = codec.decode(payload, xhat, k, 70)
    assert out.dtype == np.uint8 and out.shape == x.shape
    error = np.abs(out.astype(int) - x).max()
    assert error <= k
    if k == 0:
        assert np.array_equal(out, x)
    assert codec.encode(x, xhat, k, 70) == payload  # deterministic


def test_smooth_photo_round_trips_and_costs_less_than_8_bits(codec):
    x = photo_like(40, 24, seed=3)
    xhat = np.clip(x.astype(int) + np.random.default_rng(3).integers(-2, 3, x.shape), 0, 255)
    xhat = xhat.astype(np.uint8)
    for k in (0, 1, 4):
        payload = codec.encode(x, xhat, k, 55.5)
        assert np.abs(codec.decode(payload, xhat, k, 55.5).astype(int) - x).max() <= k
    assert 8 * len(codec.encode(x, xhat, 0, 55.5)) < 8 * x.size


def test_quality_and_k_reach_the_model(codec):
    """Both are inputs: another quality or K codes other bits (and the decoder must be
    given the encoder's)."""
    x, xhat = pair((16, 16, 3), 1)
    a = codec.encode(x, xhat, 0, 70)
    assert codec.encode(x, xhat, 0, 85) != a
    assert np.array_equal(codec.decode(a, xhat, 0, 70), x)


def test_same_payload_on_1_and_2_threads(arrays):
    """Rows enough for the BLAS to split the products over threads."""
    codec = ResidualCodec.from_arrays(arrays)
    x, xhat = pair((96, 128, 3), 5, spread=20)
    with threads(1):
        one = codec.encode(x, xhat, 0, 70)
        back_one = codec.decode(one, xhat, 0, 70)
    with threads(2):
        two = codec.encode(x, xhat, 0, 70)
        back_two = codec.decode(one, xhat, 0, 70)
    assert one == two
    assert np.array_equal(back_one, x) and np.array_equal(back_two, x)


def _integer_reference(net, columns: np.ndarray, globals_: tuple[int, int]) -> np.ndarray:
    """The exact networks' arithmetic in int64 (no floating point, no BLAS)."""
    def finish(acc, layer):
        shift = layer.shift
        out = np.where(shift >= 0, acc >> np.maximum(shift, 0), acc << np.maximum(-shift, 0))
        out = np.where(layer.leaky & (out < 0), (out * 41) >> 12, out)
        return np.clip(out, -2**20, 2**20)

    first = net.layers[0]
    w = first.weight.astype(np.int64)
    bias = first.bias.astype(np.int64) + np.array(globals_, np.int64) @ w[-2:]
    h = finish(columns.astype(np.int64) @ w[:-2] + bias, first)
    skip, h = h[:, -2:], h[:, :-2]
    for layer in net.layers[1:]:
        h = finish(h @ layer.weight.astype(np.int64) + layer.bias.astype(np.int64), layer)
    return h + skip


def test_the_networks_compute_exactly_what_integers_give(codec):
    """Every pass's float64 products equal the same arithmetic in int64, for the largest
    inputs too: the accumulation is exact, not merely close."""
    x, xhat = pair((40, 36, 3), 7, spread=60)
    residual = x.astype(np.int64) - xhat
    features = IntegerFeatures(xhat, 2)
    for p in passes(3):
        columns = features(p, residual)
        extreme = np.tile(features.bounds(p)[:-2], (3, 1)) * [[1], [-1], [0.5]]
        columns = np.concatenate([columns, extreme.astype(np.int32)])
        net = codec.nets[p]
        for g in ((0, 1), (10000, 17), (5550, 3)):
            assert np.array_equal(net(columns, net.bias_with_globals(g)),
                                  _integer_reference(net, columns, g)), (p, g)


def test_damaged_payloads_raise_the_corrupt_file_error(codec):
    x, xhat = pair((9, 11, 3), 2)
    payload = codec.encode(x, xhat, 1, 40)
    for n in range(len(payload)):  # every truncation
        with pytest.raises(CorruptFileError):
            codec.decode(payload[:n], xhat, 1, 40)
    with pytest.raises(CorruptFileError):
        codec.decode(payload + b"\0", xhat, 1, 40)
    rng = np.random.default_rng(0)
    for _ in range(200):  # flipped bits: refused, or some image (the container's CRC
        damaged = bytearray(payload)  # catches those), never another exception
        i = int(rng.integers(len(damaged)))
        damaged[i] ^= 1 << int(rng.integers(8))
        try:
            out = codec.decode(bytes(damaged), xhat, 1, 40)
        except CorruptFileError:
            continue
        assert out.shape == x.shape and out.dtype == np.uint8


def test_oversized_weights_are_refused_at_load(arrays):
    """Sums that could reach 2**53 would no longer be exact in float64."""
    big = dict(arrays)
    key = "c1.p2.1.weight"
    big[key] = big[key].astype(np.int64) * 2**36
    with pytest.raises(BoundError, match="c1.p2: layer 1"):
        ResidualCodec.from_arrays(big)
    big = dict(arrays)
    big["c0.p0.0.bias"] = big["c0.p0.0.bias"] + 2**53
    with pytest.raises(BoundError):
        ResidualCodec.from_arrays(big)


def test_the_integer_model_follows_the_float_one():
    """Quantized, the integer networks' means and log scales stay within a few hundredths
    of the float networks'."""
    from neuralcodec.residual.context import Features, Pass
    from neuralcodec.residual.exact import quantize_net
    from neuralcodec.residual.model import MEAN_UNIT

    model = float_model(1)
    _, xhat = pair((12, 12, 3), 4)
    residual = np.random.default_rng(4).integers(-30, 31, (12, 12, 3))
    p = Pass(2, 3)
    floats = Features(xhat, 70, 3, 2)(p, residual)
    mean, scale = model(p, floats)
    ints = IntegerFeatures(xhat, 2)
    net = quantize_net(model.nets[p], ints.scales(p), ints.bounds(p))
    out = net(ints(p, residual), net.bias_with_globals((7000, 3))) / 1024
    assert np.abs(out[:, 0] * MEAN_UNIT - mean).max() < 0.05
    # (the float model clips the log scale to -4..6: beyond, both pick the end tables)
    assert np.abs(np.clip(out[:, 1], -4, 6) - np.log(scale)).max() < 0.01


@pytest.mark.parametrize("bad", [dict(max_error=9), dict(max_error=-1), dict(max_error=1.5),
                                 dict(quality=101.0), dict(xhat=np.zeros((4, 4, 3), np.uint16)),
                                 dict(xhat=np.zeros((4, 5, 3), np.uint8)),
                                 dict(xhat=np.zeros((4, 4, 4), np.uint8))])
def test_bad_arguments_are_one_line_errors(codec, bad):
    args = dict(image=np.zeros((4, 4, 3), np.uint8), xhat=np.zeros((4, 4, 3), np.uint8),
                max_error=0, quality=50.0)
    args.update(bad)
    with pytest.raises(AecError) as info:
        codec.encode(**args)
    assert "\n" not in str(info.value)


def test_models_are_found_by_name_and_not_listed_as_image_models(arrays, tmp_path,
                                                                 monkeypatch):
    from safetensors.numpy import save_file

    from neuralcodec.families.shipped import file_sha256
    from neuralcodec.families.zoo import available_models

    save_file(arrays, str(tmp_path / "mine.safetensors"))
    (tmp_path / "mine.json").write_text(json.dumps({"name": "mine", "family": "residual"}))
    monkeypatch.setenv("AEC_MODEL_PATH", str(tmp_path))
    load_residual_model.cache_clear()
    try:
        mine = load_residual_model("mine")
        assert mine.name == "mine" and mine.max_error_limit == 8
        assert mine.fingerprint == file_sha256(tmp_path / "mine.safetensors")[:16]
        assert "mine" not in {m.name for m in available_models()}
        assert "mine" in {m.name for m in available_models(layers=True)}
        with pytest.raises(AecError, match="residual model 'nope' is not installed"):
            load_residual_model("nope")
    finally:
        load_residual_model.cache_clear()
    assert DEFAULT_RESIDUAL_MODEL == "aec-residual-1"


# SHA-256 of aec-residual-1's payloads of the photo below (K = 0 and 2, RGB; gray at
# quality 55.5): what every machine, thread count and NumPy must write. Changing the
# model's arithmetic, its weights or the payload's layout changes them.
GOLDEN_PAYLOADS = {
    ("rgb", 0): "3da050d7c424f72ff70069dd6f7437d1c93038d82e2fbfe0ec7635c58d95ae10",
    ("rgb", 2): "ab67589d6352809a1ac971b22660a40e7c03081dc1d957669b961c1c4fddddab",
    ("gray", 0): "4cc71e0a5648aa3cc8ffe02ded7252df52fffc8986d7dd7a9ed9c559433f603d",
}


def test_the_shipped_model_writes_the_recorded_payloads():
    import hashlib

    codec = load_residual_model()
    assert codec.name == DEFAULT_RESIDUAL_MODEL and codec.max_error_limit == 8
    assert max(codec.bounds_log2.values()) < 53
    x = photo_like(48, 40, seed=11)
    noise = np.random.default_rng(11).integers(-3, 4, x.shape)
    xhat = np.clip(x.astype(int) + noise, 0, 255).astype(np.uint8)
    for (mode, k), digest in GOLDEN_PAYLOADS.items():
        image, base = (x, xhat) if mode == "rgb" else (x[..., :1], xhat[..., :1])
        quality = 70 if mode == "rgb" else 55.5
        payload = codec.encode(image, base, k, quality)
        assert hashlib.sha256(payload).hexdigest() == digest, (mode, k)
        out = codec.decode(payload, base, k, quality)
        assert np.abs(out.astype(int) - image).max() <= k
