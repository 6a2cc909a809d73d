"""aec bench at the top of the range: the lossless / near-lossless codecs and their table,
the row cache shared between runs, and aec's own rows through lossless= / max_error=."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from neuralcodec.bench import harness as bench
from neuralcodec.bench.classical import BOUNDED_CODECS, run_classical
from neuralcodec.bench.harness import BenchOptions, NeuralSpec, QualityMeter, RowCache, run_bench
from neuralcodec.cli import run
from neuralcodec.codec import Codec, residual_layer
from neuralcodec.errors import AecError

from .helpers import photo_like
from .test_residual_layer import random_residual_model

LOSSLESS = {"png", "webp-lossless", "jxl-lossless", "jpegls"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    # Small: WebP lossless at method 6 takes seconds on a Kodak-sized image.
    path = tmp_path_factory.mktemp("small")
    Image.fromarray(photo_like(37, 23, seed=1), "RGB").save(path / "a.png")
    Image.fromarray(photo_like(48, 40, seed=2), "RGB").save(path / "b.png")
    return path


def test_lossless_codecs_round_trip_exactly_and_near_k_stays_within_k():
    image = photo_like(37, 23, seed=3)
    for codec in BOUNDED_CODECS:
        coded = run_classical(codec, image, codec.sweep(False, [0, 1, 2, 4]))
        for c in coded:
            error = int(np.abs(c.decoded.astype(int) - image.astype(int)).max())
            assert error == c.max_error <= c.setting, (codec.label, c.setting)
            if c.setting == 0:
                assert np.array_equal(c.decoded, image), codec.label
        if codec.near:  # a looser bound gives a smaller file
            sizes = [c.num_bytes for c in coded]
            assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[-1]


def test_a_codec_that_breaks_its_bound_stops_the_run():
    jpegls = next(c for c in BOUNDED_CODECS if c.family == "jpegls")
    lying = dataclasses.replace(jpegls, knob=lambda k: {"level": int(k) + 3})
    with pytest.raises(AecError, match="beyond its bound K=1"):
        run_classical(lying, photo_like(37, 23, seed=4), [1])
    with pytest.raises(AecError, match="not lossless"):
        run_classical(lying, photo_like(37, 23, seed=4), [0])


def test_cli_lossless_selects_the_table_and_writes_it(folder, tmp_path, capsys):
    out = tmp_path / "out"
    assert run(["bench", str(folder), "--codecs", "lossless", "--max-error", "0,2",
                "--out", str(out), "--workers", "1", "--no-speed"]) == 0
    summary = capsys.readouterr().out
    assert "## Lossless and near-lossless: bits per pixel, mean over 2 image(s)" in summary
    assert "| codec | lossless | K = 2 |" in summary and "| jpegls | " in summary
    saved = json.loads((out / "results.json").read_text())
    assert {r["codec"] for r in saved["rows"]} == LOSSLESS
    assert saved["aggregates"] == {}  # no RD curve
    table = saved["lossless"]
    assert set(table) == LOSSLESS and set(table["jpegls"]) == {"0", "2"}
    assert set(table["png"]) == {"0"} and table["png"]["0"]["psnr"] is None  # lossless
    assert table["jpegls"]["2"]["max_error"] <= 2 < table["jpegls"]["2"]["psnr"]
    # the mean over the images
    rows = [r for r in saved["rows"] if r["codec"] == "webp-lossless"]
    assert table["webp-lossless"]["0"]["bpp"] == pytest.approx(np.mean([r["bpp"] for r in rows]))
    assert (out / "rd-psnr-full.png").stat().st_size > 0


def test_the_default_run_leaves_the_slow_lossless_codecs_out():
    families = bench.expand_families(BenchOptions("x", "y").codecs)
    assert not LOSSLESS & set(families) and "jxl-distance" not in families
    assert set(bench.expand_families(["lossless", "jpegls"])) == LOSSLESS


def test_a_shared_cache_reuses_rows_and_codes_only_new_settings(folder, tmp_path, monkeypatch):
    cache = tmp_path / "cache"

    def options(out: str, max_errors: list[int]) -> BenchOptions:
        return BenchOptions(folder, tmp_path / out, codecs=["jpegls"], max_errors=max_errors,
                            workers=1, speed=False, progress=False, cache=cache)

    first = run_bench(options("one", [0, 2]))
    coded: list[float] = []
    real = bench.run_classical

    def counting(codec, image, settings):
        coded.extend(settings)
        return real(codec, image, settings)

    monkeypatch.setattr(bench, "run_classical", counting)
    second = run_bench(options("two", [0, 1, 2]))  # another output folder, one more K
    assert coded == [1, 1]  # K = 1 of each image; 0 and 2 came from the cache
    assert [r for r in second.rows if r.setting != 1] == first.rows
    assert not (tmp_path / "two" / "cache").exists()  # the rows live in --cache


def _fake_residual_codec(monkeypatch, off_by: int = 0) -> list[dict]:
    """Codec.encode/decode as the residual layer's interface, storing PNG bytes (with the
    decoded samples moved by ``off_by``): the harness's side of aec's rows."""
    calls: list[dict] = []

    def encode(self, image, quality=75, progress=None, effort=1, strip=False,
               lossless=False, max_error=0):
        calls.append({"lossless": lossless, "max_error": max_error})
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    def decode(self, data):
        pixels = np.asarray(Image.open(io.BytesIO(data))).astype(int)
        return Image.fromarray(np.clip(pixels + off_by, 0, 255).astype(np.uint8))

    monkeypatch.setattr(Codec, "encode", encode)
    monkeypatch.setattr(Codec, "decode", decode)
    monkeypatch.setattr(residual_layer, "residual_model",
                        lambda name=None: SimpleNamespace(fingerprint="fake"))
    return calls


def _images(folder: Path) -> list[bench.SourceImage]:
    return [bench.SourceImage(p, bench.load_rgb(p), p.stem) for p in sorted(folder.iterdir())]


def test_aec_rows_go_through_lossless_and_max_error_and_are_cached(folder, tmp_path,
                                                                   monkeypatch):
    calls = _fake_residual_codec(monkeypatch)
    images, meter = _images(folder), QualityMeter(torch.device("cpu"))
    cache, lines = RowCache(tmp_path / "rows.jsonl"), []
    spec = NeuralSpec("aec-hp-ckbd")
    rows = bench.sweep_residual(spec, images, [0, 2], "cpu", meter, cache, lines.append)
    assert calls == [{"lossless": True, "max_error": 0}, {"lossless": False, "max_error": 2}] * 2
    assert {r.codec for r in rows} == {"aec-hp-ckbd residual"}
    assert [r.max_error for r in rows] == [0, 0, 0, 0]
    assert len(lines) == 4 and lines[0].startswith("aec-hp-ckbd residual a.png K=0: ")
    again = bench.sweep_residual(spec, images, [0, 2], "cpu", meter, RowCache(cache.path),
                                 lines.append)
    assert again == [] and len(calls) == 4  # a rerun codes nothing

    _fake_residual_codec(monkeypatch, off_by=3)
    with pytest.raises(AecError, match="aec-hp-ckbd residual: a decoded sample is 3 levels"):
        bench.sweep_residual(spec, images, [2], "cpu", meter, RowCache(tmp_path / "x"),
                             lines.append)


def test_aec_rows_of_the_residual_layer_in_the_table(folder, tmp_path, monkeypatch, capsys):
    """The real encoder's lossless= / max_error= (a small random residual model: its
    round trips are exact whatever its weights), through the command line."""
    model = random_residual_model()
    monkeypatch.setattr(residual_layer, "residual_model", lambda name=None: model)
    out = tmp_path / "out"
    assert run(["bench", str(folder), "--codecs", "aec,jpegls", "--models", "aec-hp-ckbd",
                "--max-error", "0,2", "--quick", "--no-speed", "--workers", "1",
                "--out", str(out)]) == 0
    assert "| aec-hp-ckbd residual | " in capsys.readouterr().out
    saved = json.loads((out / "results.json").read_text())
    cells = saved["lossless"]["aec-hp-ckbd residual"]
    assert set(cells) == {"0", "2"} and cells["0"]["max_error"] == 0
    assert cells["2"]["max_error"] <= 2 and cells["2"]["bpp"] < cells["0"]["bpp"]
    assert saved["settings"]["aec_max_errors"] == [0, 2]
    assert set(saved["aggregates"]) == {"aec-hp-ckbd"}  # its RD curve stays a curve


def test_max_error_rows_only_for_models_that_take_the_residual_layer(folder, tmp_path,
                                                                     capsys):
    # aec-vq has no residual layer: refused before any work, not partway through a run.
    assert run(["bench", str(folder), "--codecs", "aec", "--models", "aec-vq",
                "--max-error", "0", "--no-speed", "--out", str(tmp_path / "o")]) == 1
    assert capsys.readouterr().err.strip() == (
        "aec: error: --max-error: none of the models takes the residual layer "
        "(aec-hp-ckbd does)")
    assert not (tmp_path / "o").exists()
