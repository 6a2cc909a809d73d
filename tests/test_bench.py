"""aec bench: BD-rate on hand-made curves, and smoke runs of the harness on tiny images."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from neuralcodec.bench import harness as bench
from neuralcodec.bench import report as bench_report
from neuralcodec.bench.classical import CLASSICAL_CODECS, run_classical
from neuralcodec.bench.harness import (
    BenchOptions,
    NeuralSpec,
    QualityMeter,
    Row,
    neural_specs,
    run_bench,
)
from neuralcodec.bench.stage_timing import speed_markdown, speed_report, stage_seconds
from neuralcodec.cli import run
from neuralcodec.errors import AecError
from neuralcodec.format import container

from .helpers import photo_like

# Big enough for MS-SSIM's five scales (short side > 160), small enough to code quickly.
SIDE = 176


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("images")
    Image.fromarray(photo_like(SIDE, SIDE, seed=1), "RGB").save(path / "a.png")
    Image.fromarray(photo_like(SIDE + 16, SIDE, seed=2), "RGB").save(path / "b.png")
    return path


def curve(scale: float = 1.0) -> list[dict]:
    rates = [0.1, 0.25, 0.5, 1.0, 2.0]
    return [{"bpp": r * scale, "psnr": 30 + 4 * np.log2(r), "msssim_db": 12 + 3 * np.log2(r)}
            for r in rates]


def test_bd_rate_of_a_curve_against_itself_is_zero():
    entry = bench_report.bd_entry(curve(), curve(), "psnr")
    assert entry["bd_rate_pct"] == pytest.approx(0, abs=1e-9)
    assert entry["bd_quality"] == pytest.approx(0, abs=1e-9)


def test_bd_rate_at_half_the_rate_is_minus_50_both_ways_and_for_both_metrics():
    matrix = bench_report.bd_matrix({"anchor": curve(), "half": curve(0.5)})
    for metric in ("psnr", "msssim_db"):
        cells = {(e["test"], e["anchor"]): e for e in matrix[metric]}
        assert cells["half", "anchor"]["bd_rate_pct"] == pytest.approx(-50)
        assert cells["anchor", "half"]["bd_rate_pct"] == pytest.approx(100)
        assert ("anchor", "anchor") not in cells


def test_bd_rate_of_curves_that_do_not_overlap_is_an_error_entry():
    far = [{**p, "psnr": p["psnr"] + 100} for p in curve()]
    assert "do not overlap" in bench_report.bd_entry(curve(), far, "psnr")["error"]


def test_aggregate_is_the_mean_over_images_per_setting():
    rows = [Row("a", "x", 50, 10, 10, 100, 8.0, 30.0, 0.9, 1.0, 0.5),
            Row("b", "x", 50, 10, 10, 300, 24.0, 40.0, 0.99, 3.0, 1.5),
            Row("a", "x", 10, 10, 10, 50, 4.0, 20.0, None, 1.0, 1.0)]
    (low, high) = bench_report.aggregate(rows)["x"]
    assert (low["setting"], high["setting"]) == (10, 50)
    assert high["bpp"] == 16.0 and high["psnr"] == 35.0 and high["encode_s"] == 2.0
    assert high["msssim"] == pytest.approx(0.945)
    assert high["msssim_db"] == pytest.approx(-10 * np.log10(1 - 0.945))
    assert high["encode_mp_per_s"] == pytest.approx(1e-4 / 2.0)
    assert low["msssim"] is None and low["msssim_db"] is None


def test_quality_meter_psnr_and_msssim():
    meter = QualityMeter(torch.device("cpu"))
    original = photo_like(SIDE, SIDE, seed=3)
    noisy = np.clip(original.astype(int) + 8, 0, 255).astype(np.uint8)
    (same_psnr, same_ssim), (noisy_psnr, noisy_ssim) = meter.measure(original, [original, noisy])
    assert same_psnr == float("inf") and same_ssim == pytest.approx(1.0)
    assert 25 < noisy_psnr < 35 and 0.5 < noisy_ssim < 1.0
    small = photo_like(64, 64)
    assert meter.measure(small, [small])[0][1] is None  # too small for MS-SSIM


def test_model_spec_parsing():
    assert NeuralSpec.parse("m").label == "m"
    assert NeuralSpec.parse("m@v1") == NeuralSpec("m", 1)
    with pytest.raises(AecError, match="NAME@vN"):
        NeuralSpec.parse("m@vx")


def test_classical_codecs_code_every_setting_with_real_bytes():
    image = photo_like(48, 40)
    for codec in CLASSICAL_CODECS:
        coded = run_classical(codec, image, codec.quick_settings)
        sizes = [c.num_bytes for c in coded]
        assert all(c.decoded.shape == image.shape for c in coded), codec.label
        assert sizes == sorted(sizes) and sizes[0] < sizes[-1], codec.label  # rate rises


def test_smoke_run_writes_every_output_and_resumes_from_the_cache(folder, tmp_path, monkeypatch):
    out = tmp_path / "out"
    options = BenchOptions(folder, out, codecs=["aec", "jpeg", "webp"], quick=True,
                           models=["aec-hp-ckbd"],  # not every installed model: keep it short
                           device="cpu", workers=1, speed=False, progress=False)
    result = run_bench(options)
    classical = [c for c in CLASSICAL_CODECS if c.family in ("jpeg", "webp")]
    codecs = {r.codec for r in result.rows}
    assert codecs == {"aec-hp-ckbd", "jpeg-420", "jpeg-444", "webp"}
    expected = 2 * (len(bench.AEC_QUICK_QUALITIES)
                    + sum(len(c.quick_settings) for c in classical))
    assert len(result.rows) == expected
    for r in result.rows:
        assert r.bpp == pytest.approx(8 * r.bytes / (r.width * r.height))
        assert 15 < r.psnr < 60 and 0 < r.msssim <= 1 and r.encode_s > 0, r
    for name in ("results.json", "results.csv", "summary.md", "rd-psnr.png", "rd-msssim.png"):
        assert (out / name).stat().st_size > 0, name
    saved = json.loads((out / "results.json").read_text())
    assert len(saved["rows"]) == expected and saved["environment"]["device"] == "cpu"
    assert saved["references"] == {}  # not Kodak: no published reference curves
    with (out / "results.csv").open() as f:
        assert len(list(csv.DictReader(f))) == expected
    summary = (out / "summary.md").read_text()
    assert "## BD-rate on RGB PSNR" in summary and "## BD-rate on MS-SSIM" in summary

    # A resumed run codes nothing again: every row comes from the cache.
    def fail(*args, **kwargs):
        raise AssertionError("coded again despite the cache")

    monkeypatch.setattr(bench, "run_classical", fail)
    monkeypatch.setattr(container, "pack", fail)
    with (out / bench.CACHE_NAME).open("a") as f:
        f.write('{"key": "cut short by an interrupt')  # a torn last line is ignored
    assert run_bench(options).rows == result.rows


def test_batched_and_codec_cached_analysis_code_like_one_image_at_a_time(tmp_path,
                                                                          monkeypatch):
    # The path CUDA runs take (several same-sized images per analysis call), on the CPU,
    # and the one for tiled images (the codec caches the analysis itself).
    for seed in (5, 6):
        Image.fromarray(photo_like(SIDE, SIDE, seed=seed), "RGB").save(tmp_path / f"{seed}.png")

    def rows(batch: int, out: str) -> list[Row]:
        return run_bench(BenchOptions(tmp_path, tmp_path / out, codecs=["aec"], quick=True,
                                      device="cpu", speed=False, progress=False,
                                      analysis_batch=batch)).rows

    single, batched = rows(1, "single"), rows(2, "batched")
    monkeypatch.setattr(bench, "_one_tile", lambda codec, image: False)
    cached = rows(1, "cached")
    assert [(r.bytes, r.psnr) for r in cached] == [(r.bytes, r.psnr) for r in single]
    assert all(r.encode_s > 0 for r in cached)
    for one, two in zip(single, batched, strict=True):
        assert (one.image, one.setting) == (two.image, two.setting)
        # Batched convolutions may round differently in the last bit, flipping a few
        # latents; features of the wrong image would cost ~10 dB, not hundredths.
        assert two.bytes == pytest.approx(one.bytes, rel=0.05)
        assert two.psnr == pytest.approx(one.psnr, abs=0.1)


def test_speed_report_stages_add_up_and_restore_the_code_path(codec):
    image = Image.fromarray(photo_like(SIDE, SIDE), "RGB")
    stages = stage_seconds(codec, image, 50)
    for direction, coding in (("encode", "entropy coding"), ("decode", "entropy decoding")):
        s = stages[direction]
        assert s["entropy parameters"] > 0 and s[coding] > 0
        parts = sum(v for k, v in s.items() if k != "total")
        assert parts == pytest.approx(s["total"])
    # the timing wrappers are gone again
    assert "analyse" not in vars(codec.coder()) and container.pack.__name__ == "pack"

    report = speed_report([image], None, ["cpu"], repeats=1, frame_size=(128, 64))
    cpu = report["devices"]["cpu"]
    assert cpu["frame"]["size"] == [128, 64] and cpu["frame"]["encode_fps"] > 0
    assert any("decode: synthesis transform" in line for line in speed_markdown(report))


def test_cli_bench_with_a_worker_pool_and_its_one_line_errors(folder, tmp_path, capsys):
    out = tmp_path / "cli"
    assert run(["bench", str(folder), "--codecs", "jpeg", "--quick", "--out", str(out),
                "--workers", "2"]) == 0
    assert "| jpeg-420 | — |" in capsys.readouterr().out  # the summary with its BD matrix
    # worker processes code exactly what the codec does in this process
    saved = json.loads((out / "results.json").read_text())["rows"]
    jpeg = next(c for c in CLASSICAL_CODECS if c.label == "jpeg-444")
    pixels = np.asarray(Image.open(folder / "b.png"))
    in_process = [c.num_bytes for c in run_classical(jpeg, pixels, jpeg.quick_settings)]
    assert [r["bytes"] for r in saved if (r["image"], r["codec"]) == ("b.png", "jpeg-444")
            ] == in_process

    assert run(["bench", str(folder), "--codecs", "jpeg,gif", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == ("aec: error: unknown codec(s) gif; choose from aec,jpeg,webp,avif,jxl,"
                   "jxl-distance,jpeg2000,png,webp-lossless,jxl-lossless,jpegls or lossless")


def test_bench_lists_the_images_that_encode_codes_from_a_folder(tmp_path):
    """`aec bench DIR` and `aec encode DIR` take the same files: a GIF too, not .aec
    files nor text."""
    for name in ("a.png", "b.gif", "c.JPG", "d.bmp"):
        Image.fromarray(photo_like(24, 16, seed=len(name)), "RGB").save(tmp_path / name)
    (tmp_path / "e.txt").write_text("not an image")
    (tmp_path / "f.aec").write_bytes(b"\x89AEC")
    out = tmp_path / "out"
    assert run(["encode", str(tmp_path), "-o", str(out), "-q", "10", "--quiet"]) == 0
    encoded = sorted(p.stem for p in out.glob("*.aec"))
    assert encoded == ["a", "b", "c", "d"]
    assert [p.stem for p in bench.list_images(tmp_path, None)] == encoded


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_source_revision_only_for_an_aec_checkout(tmp_path):
    """An installed copy inside another git repository (pyenv's site-packages is one)
    must not report that repository's commit as aec's."""
    outer = tmp_path / "outer"
    (outer / "site-packages").mkdir(parents=True)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(outer)]
    subprocess.run([*git, "init", "-q"], check=True)
    (outer / "README").write_text("x")
    subprocess.run([*git, "add", "README"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    assert bench.source_revision(outer / "site-packages") is None
    assert bench.source_revision(tmp_path / "nowhere-near-git") is None
    commit = bench.source_revision(outer)  # the checkout itself does report its commit
    assert commit is not None and len(commit) >= 7


def test_source_revision_by_default_names_the_checkout_of_this_code():
    root = Path(bench.__file__).resolve().parents[2]
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("needs git and a checkout")
    assert bench.source_revision() == bench.source_revision(root) is not None


def test_summary_names_the_code_with_or_without_a_revision():
    versions = {"aec": "0.1.0"}
    assert bench_report.code_label({"aec_revision": "abc1234", "versions": versions}) \
        == "aec code abc1234"
    label = bench_report.code_label({"aec_revision": None, "versions": versions})
    assert "0.1.0" in label and "None" not in label


def test_the_bench_measures_the_image_aec_codes(tmp_path):
    """A 16-bit gray image is scaled to 8 bits as `aec encode` scales it (not clipped
    to white), so every codec's PSNR is against the image aec codes."""
    samples = (np.arange(48 * 32, dtype=np.uint16).reshape(32, 48) * 40)
    Image.fromarray(samples).save(tmp_path / "g16.png")
    expected = np.round(samples / 257).astype(np.uint8)
    assert np.array_equal(bench.load_rgb(tmp_path / "g16.png"),
                          np.stack([expected] * 3, -1))


def test_models_that_fit_each_image_are_benched_only_when_named():
    # An aec-of encode is a fit of minutes: a default run over every installed model
    # would spend hours on it.
    default = {spec.model for spec in neural_specs(None)}
    assert "aec-hp-ckbd" in default and "aec-of" not in default
    assert {spec.model for spec in neural_specs(["aec-of"])} == {"aec-of"}
