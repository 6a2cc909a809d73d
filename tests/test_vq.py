"""The VQ-VAE family: the shipped model through Codec and the CLI, exact tables, damage."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from neuralcodec import Codec
from neuralcodec.cli import run
from neuralcodec.entropy import CDF_PRECISION
from neuralcodec.errors import AecError, CorruptFileError
from neuralcodec.families import zoo as registry
from neuralcodec.families.vq import CHUNK_VQ_INDICES
from neuralcodec.families.vq.coder import TABLES, save_model
from neuralcodec.families.vq.model import VQAutoencoder, VQConfig, quantized_cdf, units_at

from .helpers import photo_like, rate_point

MODEL = "aec-vq"


@pytest.fixture(scope="module")
def vq_codec() -> Codec:
    torch.set_num_threads(2)
    return Codec(model=MODEL, device="cpu").load()


@pytest.fixture(scope="module")
def image() -> Image.Image:
    return Image.fromarray(photo_like(80, 48, seed=21), "RGB")


def test_listed_with_its_family(capsys):
    assert run(["models", "--json"]) == 0
    rows = {r["name"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows[MODEL]["family"] == "vq-vae"


def test_units_are_monotone_in_the_rate_and_span_all_units():
    config = VQConfig(min_units=3)
    counts = [units_at(q / 400, config) for q in range(401)]
    assert counts[0] == 3 and counts[-1] == config.units
    assert all(a <= b for a, b in zip(counts, counts[1:], strict=False))


def test_decoded_indices_equal_encoder_indices(vq_codec, image):
    coder = vq_codec.coder()
    x = vq_codec.padded_input(vq_codec.prepare(image), coder)
    q = coder.index_model.quantize(coder.analyse(x).double(), bits_table=coder.bits)
    _, latents = vq_codec.decode_latents(vq_codec.encode(image, 40))
    assert len(latents.units) == units_at(0.4, coder.config)
    for row, unit in zip(latents.indices, latents.units, strict=True):
        assert np.array_equal(row, q.indices[divmod(unit, coder.config.groups)].numpy())


def test_shipped_tables_are_exact_cdfs(vq_codec):
    coder = vq_codec.coder()
    cdfs = coder.tables.cdfs
    c = coder.config
    assert cdfs.shape == (c.units * c.contexts, c.codebook_size + 2)
    assert np.all(cdfs[:, 0] == 0) and np.all(cdfs[:, -1] == 1 << CDF_PRECISION)
    assert np.all(np.diff(cdfs, axis=1) >= 1)
    # The tables are the stored integers, not recomputed from the logits at load time.
    from safetensors.torch import load_file

    stored = load_file(str(registry.find_model(MODEL).weights))[TABLES].numpy()
    assert np.array_equal(stored, cdfs)


def test_quantized_cdf_keeps_every_symbol_codable():
    pmf = np.zeros(256)
    pmf[7] = 1.0  # all mass on one code: the others still get one count each
    cdf = quantized_cdf(pmf)
    freqs = np.diff(cdf)
    assert cdf[-1] == 1 << CDF_PRECISION and freqs.min() == 1 and freqs.argmax() == 7
    assert len(cdf) == 258


def test_unit_order_must_respect_context_parents():
    with pytest.raises(ValueError):
        VQConfig(groups=2, stages=2, unit_order=(2, 0, 1, 3))  # stage 1 before stage 0
    with pytest.raises(ValueError):
        VQConfig(groups=2, stages=2, unit_order=(1, 0, 2, 3))  # group 1 before group 0
    VQConfig(groups=2, stages=2, unit_order=(0, 2, 1, 3))


def test_cli_model_option_and_info(tmp_path, image, capsys):
    src, aec, back = tmp_path / "in.png", tmp_path / "in.aec", tmp_path / "back.png"
    image.save(src)
    assert run(["encode", str(src), str(aec), "--model", MODEL, "-q", "40"]) == 0
    assert run(["decode", str(aec), str(back)]) == 0  # the model comes from the header
    assert Image.open(back).size == image.size
    capsys.readouterr()
    assert run(["info", str(aec)]) == 0
    out = capsys.readouterr().out
    assert MODEL in out and CHUNK_VQ_INDICES.decode() in out


def _chunks(vq_codec, image, quality=50):
    coder = vq_codec.coder()
    x = vq_codec.padded_input(vq_codec.prepare(image), coder)
    return coder, coder.compress(coder.analyse(x), rate_point(quality * 100), 2), tuple(x.shape[:2])


@pytest.mark.parametrize("damage", ["missing", "unaligned", "empty", "truncated", "noise"])
def test_damaged_index_chunk(vq_codec, image, damage):
    coder, chunks, size = _chunks(vq_codec, image)
    payload = chunks[CHUNK_VQ_INDICES]
    damaged = {
        "missing": {},
        "unaligned": {CHUNK_VQ_INDICES: payload + b"\x00"},
        "empty": {CHUNK_VQ_INDICES: b""},
        "truncated": {CHUNK_VQ_INDICES: payload[: len(payload) // 2 // 4 * 4]},
        "noise": {CHUNK_VQ_INDICES: np.random.default_rng(1).bytes(len(payload) // 4 * 4)},
    }[damage]
    try:
        latents = coder.decompress_latents(damaged, size, rate_point(5000), 2)
    except CorruptFileError:
        return
    # Some damage is undetectable without the CRC; it must still give a valid image.
    assert damage in ("empty", "truncated", "noise")
    out = coder.synthesize(latents, rate_point(5000))
    assert out.shape[:2] == size and np.isfinite(out).all()


def test_damaged_file_is_one_clear_error(vq_codec, image):
    data = bytearray(vq_codec.encode(image, 50))
    at = bytes(data).index(CHUNK_VQ_INDICES) + 12  # the chunk's first payload byte
    data[at] ^= 0xFF
    with pytest.raises(AecError, match="CRC"):
        vq_codec.decode(bytes(data))


def _tiny_model(tmp_path, **card) -> tuple[VQAutoencoder, str]:
    config = VQConfig(N=8, M=16, groups=2, stages=2, codebook_size=16, contexts=2,
                      unit_order=(0, 2, 1, 3))
    torch.manual_seed(0)
    model = VQAutoencoder(config)
    with torch.no_grad():
        model.prior.logits.normal_()
        model.prior.context_bins.random_(0, 2)
    save_model(model, tmp_path, "tiny-vq", card)
    return model, "tiny-vq"


def test_save_load_roundtrip_of_a_tiny_model(tmp_path, monkeypatch):
    model, name = _tiny_model(tmp_path)
    monkeypatch.setenv(registry.MODEL_PATH_ENV, str(tmp_path))
    coder = registry.load_coder(name)
    assert dataclasses.asdict(coder.config) == dataclasses.asdict(model.config)
    probs = torch.softmax(model.prior.logits.detach().double(), -1).reshape(-1, 16)
    expected = np.stack([quantized_cdf(p) for p in probs.numpy()])
    assert np.array_equal(coder.tables.cdfs, expected)
    codec = Codec(model=name, device="cpu")
    im = Image.fromarray(photo_like(40, 24, seed=2), "RGB")
    for q in (0, 50, 100):
        data = codec.encode(im, q)
        _, latents = codec.decode_latents(data)
        assert len(latents.units) == units_at(q / 100, coder.config)
        assert codec.decode(data).size == im.size


def test_weights_without_tables_are_refused(tmp_path, monkeypatch):
    from safetensors.torch import load_file, save_file

    _, name = _tiny_model(tmp_path)
    path = tmp_path / f"{name}.safetensors"
    tensors = load_file(str(path))
    del tensors[TABLES]
    save_file(tensors, str(path))
    monkeypatch.setenv(registry.MODEL_PATH_ENV, str(tmp_path))
    with pytest.raises(AecError, match=TABLES):
        registry.load_coder(name)


def test_training_initialises_resumes_and_exports(tmp_path, monkeypatch):
    from neuralcodec.training.vq import VQTrainOptions, export, train

    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        Image.fromarray(photo_like(64, 48, seed=30 + i), "RGB").save(data / f"{i}.png")
    config = VQConfig(groups=4, stages=2, codebook_size=16, contexts=2).to_dict()
    opts = VQTrainOptions(data=[str(data)], out=str(tmp_path / "run"), steps=2, batch_size=2,
                          patch=32, init_crops=16, kmeans_iters=2, reseed_every=1,
                          context_every=1, log_every=1, checkpoint_every=1, config=config,
                          eval_dir=str(data), eval_images=1)
    logs: list[str] = []
    train(opts, log=logs.append)
    assert any("unit order" in m for m in logs)
    assert any(m.startswith("eval step 2: n") for m in logs)
    eval_log = (tmp_path / "run" / "eval.jsonl").read_text().splitlines()
    evals = [json.loads(line) for line in eval_log]
    assert evals[-1]["step"] == 2 and all(r["bpp"] > 0 for r in evals[-1]["rd"])
    train(dataclasses.replace(opts, steps=3, config=config), log=logs.append)
    assert any(m.endswith("at step 2") for m in logs)
    export(opts.out, "tiny-trained", tmp_path / "models", max_units=6)
    monkeypatch.setenv(registry.MODEL_PATH_ENV, str(tmp_path / "models"))
    coder = registry.load_coder("tiny-trained")
    assert coder.config.max_units == 6 and coder.card["training"]["steps"] == 3
    # The greedy order chosen at initialisation survived the resume and the export.
    assert len(set(coder.config.order)) == 8 and coder.config.unit_order
    codec = Codec(model="tiny-trained", device="cpu")
    assert codec.decode(codec.encode(Image.fromarray(photo_like(40, 30), "RGB"), 50)).size == (
        40, 30)
