"""The residual layer's research code (issue 41): near-lossless quantization, the decoding
order's contexts, and range coding under a context model."""

from __future__ import annotations

import numpy as np
import pytest

from neuralcodec.residual import coder
from neuralcodec.residual.context import FOUR_BY_FOUR, TWO_BY_TWO, Features, Pass, passes
from neuralcodec.residual.model import PassNet, ResidualModel
from neuralcodec.residual.quantize import quantize, restore
from neuralcodec.residual.tables import MEAN_PHASES, SCALES, build_tables, table_indices


@pytest.mark.parametrize("k", [0, 1, 2, 4, 7])
def test_every_sample_within_k(k):
    x = np.arange(256, dtype=np.uint8)
    xhat = np.arange(256, dtype=np.uint8)
    x, xhat = np.meshgrid(x, xhat)  # every pair of values
    out = restore(xhat, quantize(x.astype(np.int32) - xhat, k), k)
    assert np.abs(out.astype(int) - x).max() == k  # the bound, and reached
    if k == 0:
        assert np.array_equal(out, x)


def test_quantize_is_symmetric_and_rounds_to_nearest():
    r = np.arange(-20, 21)
    q = quantize(r, 2)
    assert np.array_equal(q, -quantize(-r, 2))
    assert np.array_equal(q[r.tolist().index(-2):r.tolist().index(3)], [0, 0, 0, 0, 0])
    assert quantize(np.array([3]), 2)[0] == 1 and quantize(np.array([7]), 2)[0] == 1
    assert quantize(np.array([8]), 2)[0] == 2


@pytest.mark.parametrize("schedule", [TWO_BY_TWO, FOUR_BY_FOUR])
def test_phases_cover_the_grid_once(schedule):
    seen = np.zeros((7, 10), dtype=int)
    for p in passes(1, schedule):
        rows, cols = p.positions(seen.shape)
        seen[rows, cols] += 1
    assert (seen == 1).all()
    assert [len(TWO_BY_TWO.decoded_offsets(p)) for p in range(4)] == [0, 4, 12, 16]
    assert [len(FOUR_BY_FOUR.decoded_offsets(p)) for p in (0, 1, 2, 3, 15)] == [0, 4, 4, 8, 24]


@pytest.mark.parametrize("schedule", [TWO_BY_TWO, FOUR_BY_FOUR])
@pytest.mark.parametrize("radius", [1, 2])
def test_a_pass_reads_no_residual_decoded_after_it(schedule, radius):
    rng = np.random.default_rng(0)
    h, w = 9, 14
    xhat = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    features = Features(xhat, 50, 3, radius)
    order = passes(3, schedule)
    for i, p in enumerate(order):
        done = np.zeros((h, w, 3), dtype=bool)
        for earlier in order[:i]:
            rows, cols = earlier.positions((h, w))
            done[rows, cols, earlier.channel] = True
        a = rng.integers(-9, 10, (h, w, 3)).astype(np.float32)
        b = np.where(done, a, rng.integers(-99, 100, (h, w, 3)))  # differs where not done
        assert np.array_equal(features(p, a), features(p, b)), p


def test_tables_are_valid_and_indices_in_range():
    tables = build_tables()
    assert len(tables) == len(SCALES) * MEAN_PHASES
    for t in range(len(tables)):
        cdf = tables.cdfs[t, : tables.lengths[t]]
        assert cdf[0] == 0 and cdf[-1] == 1 << 16 and (np.diff(cdf) > 0).all()
    base, index = table_indices(np.array([-3.9, 0.0, 0.99, 7.5]), np.array([1e-6, 0.5, 5, 1e6]))
    assert base.tolist() == [-4, 0, 0, 7]
    assert index.min() >= 0 and index.max() < len(tables)
    assert index[0] // MEAN_PHASES == 0 and index[-1] // MEAN_PHASES == len(SCALES) - 1


def _model(rng, hidden: bool, schedule=TWO_BY_TWO, radius: int = 1) -> ResidualModel:
    nets = {}
    for p in passes(3, schedule):
        n = Features(np.zeros((4, 4, 3), np.uint8), 0, 1, radius)(p, np.zeros((4, 4, 3)))
        n = n.shape[1]
        if hidden:
            nets[p] = PassNet([rng.normal(0, 0.3, (n, 6)).astype(np.float32),
                               rng.normal(0, 0.3, (6, 2)).astype(np.float32)],
                              [np.zeros(6, np.float32), np.array([0, 1], np.float32)],
                              (rng.normal(0, 0.1, (n, 2)).astype(np.float32),
                               np.zeros(2, np.float32)))
        else:
            nets[p] = PassNet([rng.normal(0, 0.2, (n, 2)).astype(np.float32)],
                              [np.array([0, 1], np.float32)])
    return ResidualModel(schedule, nets, radius)


@pytest.mark.parametrize("k", [0, 2])
@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize("schedule, radius", [(TWO_BY_TWO, 1), (FOUR_BY_FOUR, 1),
                                              (TWO_BY_TWO, 2)])
def test_residual_round_trips_through_the_range_coder(k, hidden, schedule, radius):
    rng = np.random.default_rng(k)
    x = rng.integers(0, 256, (13, 10, 3)).astype(np.uint8)
    xhat = np.clip(x.astype(int) + rng.integers(-6, 7, x.shape), 0, 255).astype(np.uint8)
    xhat[0, 0] = 255 - x[0, 0]  # far beyond any table: escapes
    symbols = quantize(x.astype(np.int32) - xhat, k)
    model, tables = _model(rng, hidden, schedule, radius), build_tables()
    stream, escapes = coder.encode(xhat, symbols, 40, k, model, tables)
    back = coder.decode(xhat, stream, escapes, 40, k, model, tables)
    assert np.array_equal(back, symbols)
    assert np.abs(restore(xhat, back, k).astype(int) - x).max() <= k
    assert len(escapes) > 0
    assert coder.ideal_bits(xhat, symbols, 40, k, model) > 0


@pytest.mark.parametrize("schedule, radius", [(TWO_BY_TWO, 1), (FOUR_BY_FOUR, 2)])
def test_model_arrays_round_trip(schedule, radius):
    model = _model(np.random.default_rng(1), True, schedule, radius)
    again = ResidualModel.from_arrays(model.arrays())
    assert again.schedule == schedule and again.nets.keys() == model.nets.keys()
    assert again.xhat_radius == radius
    p = Pass(2, 3, schedule)
    f = np.random.default_rng(2).normal(size=(5, model.nets[p].weights[0].shape[0]))
    f = f.astype(np.float32)
    for a, b in zip(model(p, f), again(p, f), strict=True):
        assert np.array_equal(a, b)
