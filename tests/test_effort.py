"""Encoder effort: refined latents, plain decoder, never a worse file by its own measure."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import neuralcodec  # noqa: F401  (registers the Pillow plugin)
from neuralcodec.cli import run
from neuralcodec.codec import Codec
from neuralcodec.errors import AecError
from neuralcodec.format import container

from .helpers import photo_like, rate_point

QUALITY = 60


@pytest.fixture(scope="module")
def codec() -> Codec:
    torch.set_num_threads(2)
    return Codec("aec-hp-ckbd", device="cpu", workers=1).load()


@pytest.fixture(scope="module")
def image() -> Image.Image:
    return Image.fromarray(photo_like(96, 80, seed=5), "RGB")


@pytest.fixture(scope="module")
def files(codec, image) -> dict[int, bytes]:
    return {e: codec.encode(image, QUALITY, effort=e)
            for e in range(1, codec.coder().max_effort + 1)}


def rd_cost(codec: Codec, image: Image.Image, data: bytes) -> float:
    """What refinement minimizes: lambda * 255^2 * MSE + bits of the latent streams per
    pixel, with the plain decoder's pixels."""
    parsed = container.unpack(data)
    chunks = parsed.tiles[0]
    coder = codec.coder()
    bits = 8 * sum(len(chunks.get(t, b"")) for t in coder.chunk_tags)
    # Effort runs on the torch backend.
    model = coder.torch_transforms().model
    level = torch.tensor([rate_point(parsed.header.quality).level(model.config.levels)])
    lam = float(model.lambda_at(level))
    decoded = np.asarray(Codec(coder.name, device="cpu").decode(data), np.float64)
    mse = np.mean((decoded - np.asarray(image, np.float64)) ** 2)
    return lam * mse + bits / (image.width * image.height)


def test_every_effort_decodes_with_the_plain_decoder(codec, image, files):
    plain = Codec("aec-hp-ckbd", device="cpu")
    for effort, data in files.items():
        decoded = plain.decode(data)
        assert decoded.size == image.size, effort
        err = np.asarray(decoded, np.float64) - np.asarray(image, np.float64)
        assert 10 * np.log10(255**2 / np.mean(err**2)) > 25, effort


def test_refinement_never_increases_the_rd_cost_and_lowers_it_at_the_top(codec, image, files):
    costs = {e: rd_cost(codec, image, data) for e, data in files.items()}
    assert all(costs[e] <= costs[1] + 1e-9 for e in costs), costs
    top = max(costs)
    assert files[top] != files[1]
    assert costs[top] < 0.99 * costs[1], costs


def test_effort_is_deterministic(codec, image, files):
    assert codec.encode(image, QUALITY, effort=2) == files[2]


def test_effort_refines_each_tile(image):
    tiled = Codec("aec-hp-ckbd", device="cpu", tile_size=64, workers=1)
    plain, refined = tiled.encode(image, QUALITY), tiled.encode(image, QUALITY, effort=3)
    parsed = container.unpack(refined)
    assert len(parsed.header.grid) == 4
    changed = [a != b for a, b in zip(container.unpack(plain).tiles, parsed.tiles, strict=True)]
    assert all(changed)
    assert Codec("aec-hp-ckbd", device="cpu").decode(refined).size == image.size


def test_effort_with_a_rate_target(codec, image):
    data, quality = codec.encode_to_target(image, bpp=0.8, effort=2)
    assert 8 * len(data) / (image.width * image.height) <= 0.8
    assert data == codec.encode(image, quality, effort=2)


@pytest.mark.parametrize("effort", [0, 99])
def test_an_effort_out_of_range_is_refused(codec, image, effort):
    with pytest.raises(AecError, match="effort"):
        codec.encode(image, QUALITY, effort=effort)


def test_a_family_without_refinement_refuses_effort(image):
    with pytest.raises(AecError, match="no refinement"):
        Codec("aec-vq", device="cpu").encode(image, QUALITY, effort=2)


def test_cli_and_pillow_take_effort(tmp_path, image, files, capsys):
    src = tmp_path / "in.png"
    image.save(src)
    assert run(["encode", str(src), str(tmp_path / "a.aec"), "-q", str(QUALITY),
                "--effort", "2"]) == 0
    assert (tmp_path / "a.aec").read_bytes() == files[2]
    image.save(tmp_path / "b.aec", quality=QUALITY, effort=2)
    assert (tmp_path / "b.aec").read_bytes() == files[2]
    assert run(["encode", str(src), str(tmp_path / "c.aec"), "--effort", "99"]) != 0
    err = capsys.readouterr().err
    assert "effort 99 is outside" in err and "Traceback" not in err
    assert not (tmp_path / "c.aec").exists()


def test_a_benchmark_cache_tells_refinement_methods_apart(monkeypatch):
    """Cached rows of an effort level are reused only for the same iterations and method:
    a changed refinement must not be reported with the old method's figures."""
    import dataclasses

    from neuralcodec.bench.harness import NeuralSpec, _neural_config
    from neuralcodec.families import base
    from neuralcodec.families.hyperprior import FAMILY

    plain, refined = NeuralSpec("aec-hp-ckbd", None, 1), NeuralSpec("aec-hp-ckbd", None, 4)
    before = _neural_config(plain), _neural_config(refined)
    monkeypatch.setitem(base._FAMILIES, FAMILY.name,
                        dataclasses.replace(FAMILY, effort_method=FAMILY.effort_method + "-b"))
    after = _neural_config(plain), _neural_config(refined)
    assert before[0] == after[0]  # effort 1 does not refine: its rows stay valid
    assert before[1] != after[1]


@pytest.mark.parametrize("native", [True, False])
def test_refinement_runs_g_s_in_bf16_only_where_native_and_decides_in_float32(
        monkeypatch, codec, image, native):
    from neuralcodec.families.hyperprior import refine
    monkeypatch.setattr(refine, "native_bf16", lambda device: native)
    dtypes: list[torch.dtype] = []
    hook = codec.coder().torch_transforms().model.g_s[0].register_forward_hook(
        lambda module, inputs, output: dtypes.append(output.dtype))
    try:
        data = codec.encode(image, QUALITY, effort=2)
    finally:
        hook.remove()
    # The refinement's iterations run g_s in bf16 where native; the choice between the
    # refined and the plain file always uses the float32 decoder's pixels.
    assert set(dtypes) == ({torch.bfloat16, torch.float32} if native else {torch.float32})
    assert dtypes[-1] == torch.float32
    assert codec.decode(data).size == image.size


def test_the_pre_cast_synthesis_computes_what_autocast_computes(codec):
    from neuralcodec.families.bf16 import with_cast_convolutions
    model = codec.coder().torch_transforms().model
    cast = with_cast_convolutions(model.g_s, torch.bfloat16)
    generator = torch.Generator().manual_seed(0)
    y_hat = torch.randn(1, model.g_s[0].in_channels, 4, 5, generator=generator)
    level = torch.tensor([3.0])
    with torch.no_grad():
        expected = model.synthesis(y_hat, level, torch.bfloat16)
        got = model.synthesis(y_hat, level, torch.bfloat16, g_s=cast)
    assert cast[0].weight.dtype == torch.bfloat16 and cast[-1].weight.dtype == torch.float32
    assert model.g_s[0].weight.dtype == torch.float32  # the model's own weights stay
    assert got.dtype == torch.float32 and torch.equal(got, expected)
