"""The overfitted family's exact parts (issue 42): the fixed-point ARM, the integer map to
Laplace tables, the wavefront latent coder, parameter coding, and a small fit whose
latents NumPy and torch index identically, whatever the thread count."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from neuralcodec.families.overfitted.architecture import DEFAULT
from neuralcodec.families.overfitted.arm_int import (
    ACT_LIMIT,
    CONTEXT_LIMIT,
    IntLinear,
    arm_fixed_point,
)
from neuralcodec.families.overfitted.laplace_tables import (
    FRAC_BITS,
    MEAN_STEPS,
    SCALE_BUCKETS,
    laplace_tables,
    table_and_base,
    tables_digest,
)
from neuralcodec.families.overfitted.latent_codec import (
    Layout,
    decode_latents,
    encode_latents,
    table_indices,
)
from neuralcodec.families.overfitted.parameters import decode_parameters, encode_parameters

from .helpers import photo_like, threads


def random_arm(seed: int, c: int = 16) -> list[IntLinear]:
    rng = np.random.default_rng(seed)
    layers = [IntLinear.from_quantized(rng.integers(-40, 40, (c, c)), 8,
                                       rng.integers(-60, 60, c), 10, True) for _ in range(2)]
    layers.append(IntLinear.from_quantized(rng.integers(-40, 40, (2, c)), 7,
                                           np.array([3, -200]), 8, False))
    return layers


def reference_arm(context: np.ndarray, layers: list[IntLinear]) -> np.ndarray:
    """The fixed-point ARM in Python integers, one row at a time: the specification."""
    out = []
    for row in context.astype(np.int64).tolist():
        x = [max(-CONTEXT_LIMIT, min(CONTEXT_LIMIT, v)) << FRAC_BITS for v in row]
        for layer in layers:
            w = layer.weight.astype(np.int64).tolist()
            y = []
            for j in range(len(w[0])):
                acc = sum(x[i] * w[i][j] for i in range(len(x))) + int(layer.bias[j])
                v = acc >> layer.weight_bits  # floor division by 2**bits
                if layer.residual:
                    v = max(0, v + x[j])
                y.append(max(-ACT_LIMIT, min(ACT_LIMIT, v)))
            x = y
        out.append(x)
    return np.array(out)


def test_fixed_point_arm_is_the_integer_specification():
    rng = np.random.default_rng(1)
    layers = random_arm(2)
    context = rng.integers(-40, 40, (300, 16)).astype(np.float64)
    context[:5] *= 5000  # some beyond the clamp
    mu, log_scale = arm_fixed_point(context, layers)
    expected = reference_arm(context, layers)
    assert np.array_equal(mu, expected[:, 0]) and np.array_equal(log_scale, expected[:, 1])


def test_table_map_rounds_the_mean_to_the_nearest_step():
    mu = np.arange(-3 * 2**FRAC_BITS, 3 * 2**FRAC_BITS, dtype=np.float64)
    log_scale = np.zeros_like(mu)
    tables, base = table_and_base(mu, log_scale)
    centre = base + (tables % MEAN_STEPS) / MEAN_STEPS
    assert np.all(np.abs(centre - mu / 2**FRAC_BITS) <= 0.5 / MEAN_STEPS)
    assert MEAN_STEPS == 32
    assert np.all(tables // MEAN_STEPS == tables[0] // MEAN_STEPS)  # one scale bucket
    # Scales clamp into the table range at both ends.
    tables, _ = table_and_base(np.zeros(2), np.array([-1e9, 1e9]))
    assert (tables // MEAN_STEPS).tolist() == [0, SCALE_BUCKETS - 1]


def test_tables_are_pinned():
    # A platform whose exp() rounds differently would build other tables: it must show.
    t = laplace_tables()
    assert len(t) == SCALE_BUCKETS * MEAN_STEPS
    assert tables_digest() == ("0809dce914cf1b28f5841b2afaf8be624d994362fcbd868a2bbbcaf2612abee8")


def test_the_model_file_stores_the_pinned_tables():
    """aec-of's weights file holds the tables decoders use (instead of computing them):
    the formula's, bit for bit; a damaged copy is refused."""
    from safetensors.numpy import load_file

    from neuralcodec.families.overfitted.laplace_tables import pack_tables, unpack_tables
    from neuralcodec.families.zoo import find_model

    stored = load_file(str(find_model("aec-of").weights))
    assert tables_digest(unpack_tables(stored)) == tables_digest()
    assert tables_digest(unpack_tables(pack_tables(laplace_tables()))) == tables_digest()
    stored["laplace.freqs"] = stored["laplace.freqs"].copy()
    stored["laplace.freqs"][0] += 1  # one table's frequencies no longer sum to 2**16
    with pytest.raises(ValueError):
        unpack_tables(stored)


def test_wavefront_order_is_causal():
    layout = Layout.build(DEFAULT, 128, 192)
    step_of = np.empty(len(layout.positions), dtype=np.int64)
    for t, (s, e) in enumerate(zip(layout.steps[:-1], layout.steps[1:], strict=True)):
        step_of[layout.order[s:e]] = t
    where = np.full(layout.size, -1)
    where[layout.positions] = step_of
    neighbour_steps = where[layout.positions[:, None] + layout.context_offsets]
    inside = neighbour_steps >= 0  # the padding is never written
    assert np.all(neighbour_steps[inside] < np.broadcast_to(step_of[:, None],
                                                            neighbour_steps.shape)[inside])
    assert len(layout.steps) - 1 == 192 + DEFAULT.wavefront_slope * 127


@pytest.mark.parametrize("spread", [1.0, 300.0])  # 300: many escapes
def test_latents_round_trip(spread):
    layout = Layout.build(DEFAULT, 64, 128)
    rng = np.random.default_rng(3)
    grids = [np.round(rng.laplace(0, spread / (i + 1), s)).astype(np.int64)
             for i, s in enumerate(layout.shapes)]
    arm = random_arm(4)
    stream, escapes = encode_latents(layout, grids, arm)
    back = decode_latents(layout, stream, iter(escapes), arm)
    assert all(np.array_equal(a, b) for a, b in zip(grids, back, strict=True))


def test_parameters_round_trip():
    rng = np.random.default_rng(5)
    arrays = [rng.integers(-3, 4, (16, 16)), np.round(rng.laplace(0, 900, 40)).astype(int),
              np.zeros(3, dtype=int)]
    stream, buckets, escapes = encode_parameters(arrays)
    back = decode_parameters(stream, buckets, iter(escapes), [a.shape for a in arrays])
    assert all(np.array_equal(a, b) for a, b in zip(arrays, back, strict=True))


@pytest.fixture(scope="module")
def small_fit():
    from neuralcodec.families.overfitted.fit import (
        FitOptions,
        fit,
        integer_latents,
        quantize_networks,
        quantized_parameters,
    )

    image = photo_like(128, 64, seed=21)
    with threads(2):
        model = fit(image, FitOptions(lmbda=0.002, iterations=40))
        steps = quantize_networks(model, image, 0.002)
    return model, quantized_parameters(model, steps), integer_latents(model), steps


def test_numpy_and_torch_pick_the_same_tables_whatever_the_threads(small_fit):
    from neuralcodec.families.overfitted.arm_int import integer_arm
    from neuralcodec.families.overfitted.fit import integer_latents, torch_table_indices

    model, params, _, _ = small_fit
    # A short fit leaves the latents near zero and the ARM nearly constant: spread the
    # latents and take a random ARM, so that many tables are in play.
    model = copy.deepcopy(model)
    rng = np.random.default_rng(6)
    with torch.no_grad():
        for g in model.latents:
            g += torch.from_numpy(rng.integers(-20, 21, g.shape)).float()
    params = dict(params)
    for i in range(DEFAULT.arm_hidden + 1):
        params[f"arm.{i}.weight"] = (rng.integers(-40, 40, params[f"arm.{i}.weight"][0].shape),
                                     9)
        params[f"arm.{i}.bias"] = (rng.integers(-60, 60, params[f"arm.{i}.bias"][0].shape), 6)
    latents = integer_latents(model)
    layout = Layout.build(DEFAULT, *latents[0].shape)
    arm = integer_arm(params, DEFAULT.arm_hidden)
    results = []
    for n in (1, 2):
        with threads(n):
            results.append(table_indices(layout, latents, arm))
            results.append(tuple(t.numpy() for t in torch_table_indices(model, params)))
    for tables, base in results[1:]:
        assert np.array_equal(tables, results[0][0]) and np.array_equal(base, results[0][1])
    assert len(np.unique(results[0][0])) > 20  # many tables in play


def test_fitted_model_codes_and_decodes_exactly(small_fit):
    from neuralcodec.families.overfitted.coding import decode_model_latents, encode_model

    model, params, latents, steps = small_fit
    coded = encode_model(DEFAULT, latents, params, steps)
    back_params, back = decode_model_latents(DEFAULT, coded, 64, 128)
    assert all(np.array_equal(a, b) for a, b in zip(latents, back, strict=True))
    assert all(np.array_equal(back_params[n][0], params[n][0]) for n in params)
    assert torch.is_grad_enabled()  # the fit's no_grad helpers leave autograd as it was


def test_numpy_synthesis_matches_torch(small_fit):
    from neuralcodec.families.overfitted.numpy_synthesis import synthesize

    model, params, latents, _ = small_fit
    rng = np.random.default_rng(7)
    latents = [g + rng.integers(-3, 4, g.shape) for g in latents]  # not flat
    with torch.no_grad():
        expected = model.synthesize([torch.from_numpy(g).float()[None, None] for g in latents])
    expected = expected[0].permute(1, 2, 0).numpy()
    got = synthesize(DEFAULT, latents, params)
    assert got.shape == (64, 128, 3) and got.dtype == np.float32
    assert np.abs(got - expected).max() < 1e-4
    assert expected.std() > 0.01  # the comparison is not between two flat images


def test_damaged_model_parts_fail_as_corrupt(small_fit):
    import dataclasses

    from neuralcodec.errors import CorruptFileError
    from neuralcodec.families.overfitted.coding import decode_model_latents, encode_model

    _, params, latents, steps = small_fit
    coded = encode_model(DEFAULT, latents, params, steps)
    for damaged in (dataclasses.replace(coded, buckets=b"\xff" + coded.buckets[1:]),
                    dataclasses.replace(coded, steps=b"\xff" + coded.steps[1:]),
                    dataclasses.replace(coded, steps=coded.steps[:-1])):
        with pytest.raises(CorruptFileError):
            decode_model_latents(DEFAULT, damaged, 64, 128)
