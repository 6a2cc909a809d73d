"""The training engine: torchrun data parallelism, runs of fixed wall time started from
shipped weights, bf16 autocast, clean stops, and the GPU burst's CPU dry run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from neuralcodec.cli import run
from neuralcodec.families.hyperprior.model import ModelConfig
from neuralcodec.training import hyperprior as hyperprior_training
from neuralcodec.training.hyperprior import TrainOptions, _lr_at, export, new_model, rd_loss, train

from .helpers import photo_like

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--N", "16", "--M", "16", "--lambdas", "0.002,0.02,0.2"]


def _images(folder: Path, n: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(photo_like(80, 72, seed=i), "RGB").save(folder / f"{i}.png")
    return folder


def _torchrun(data: Path, out: Path, steps: int) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "neuralcodec", "train", str(data), "--out", str(out), "--steps", str(steps),
           "--batch-size", "2", "--patch", "64", "--checkpoint-every", "2", "--device", "cpu",
           *TINY]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def test_torchrun_two_processes_identical_replicas_and_exact_resume(tmp_path):
    data = _images(tmp_path / "data")
    _torchrun(data, tmp_path / "a", 2)
    first = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    # Both ranks' weights after the steps (digests gathered from each process).
    assert len(first["replica_digests"]) == 2
    assert first["replica_digests"][0] == first["replica_digests"][1]
    # Per-rank data streams differ, and the checkpoint keeps both.
    a0, a1 = first["rank_random_states"]
    assert a0["sampler_rng"] != a1["sampler_rng"]

    _torchrun(data, tmp_path / "a", 4)  # resumes at step 2
    _torchrun(data, tmp_path / "b", 4)  # uninterrupted
    sa = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    sb = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert sa["step"] == sb["step"] == 4
    assert sa["replica_digests"][0] == sa["replica_digests"][1]
    for k in sb["model"]:
        assert torch.allclose(sa["model"][k], sb["model"][k], atol=1e-6), k
    # Data parallelism really ran: not the same as one process on rank 0's stream.
    assert sa["replica_digests"] != first["replica_digests"]


def test_aec_train_nproc_runs_torchrun(tmp_path):
    """aec train --nproc 2 wraps torchrun with the same options; one export."""
    data = _images(tmp_path / "data")
    code = run(["train", str(data), "--out", str(tmp_path / "run"), "--steps", "2",
                "--batch-size", "2", "--patch", "64", "--device", "cpu", "--nproc", "2",
                "--export", "tiny-ddp", "--export-dir", str(tmp_path / "models"), *TINY])
    assert code == 0
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 2 and len(state["replica_digests"]) == 2
    assert state["options"]["config"]["lambdas"] == [0.002, 0.02, 0.2]
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [
        "tiny-ddp.json", "tiny-ddp.safetensors"]


def _opts(tmp_path: Path, **kw) -> TrainOptions:
    data = _images(tmp_path / "data", 3)
    base = dict(data=[str(data)], out=str(tmp_path / "run"), steps=2, batch_size=2, patch=64,
                checkpoint_every=100, log_every=1,
                config={"N": 16, "M": 16, "lambdas": [0.002, 0.02, 0.2]})
    return TrainOptions(**{**base, **kw})


def test_init_from_shipped_weights_adds_a_level_and_continues_the_step_count(tmp_path,
                                                                              monkeypatch):
    # A tiny "shipped" model to start from.
    train(_opts(tmp_path, out=str(tmp_path / "seed")), log=lambda m: None)
    export(tmp_path / "seed", "tiny-init", tmp_path / "models")
    monkeypatch.setenv("AEC_MODEL_PATH", str(tmp_path / "models"))
    logs: list[str] = []
    opts = _opts(tmp_path, steps=4, init="tiny-init", relevel=True, warmup=3,
                 config={"N": 16, "M": 16, "lambdas": [0.002, 0.02, 0.2, 0.5]})
    train(opts, log=logs.append)
    assert any("starting from the weights of tiny-init" in line for line in logs)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 4  # 2 steps of the seed model + 2 here
    assert state["options"]["config"]["lambdas"] == [0.002, 0.02, 0.2, 0.5]
    assert state["relevels"][-1]["to"] == [0.002, 0.02, 0.2, 0.5]
    rows = [json.loads(r) for r in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    # Warm-up counts this process's steps, not the run's: 1/3 and 2/3 of lr.
    assert [r["lr"] for r in rows] == pytest.approx([opts.lr / 3, 2 * opts.lr / 3])


def test_fixed_wall_time_run_stops_and_drops_lr_by_time(tmp_path):
    opts = _opts(tmp_path, steps=10**9, seconds=3.0)
    train(opts, log=lambda m: None)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert 0 < state["step"] < 10**9
    assert _lr_at(10**6, opts, elapsed=0.5 * 3.0) == opts.lr
    assert _lr_at(0, opts, elapsed=0.9 * 3.0) == pytest.approx(opts.lr / 10)


def test_stop_request_ends_with_a_checkpoint(tmp_path):
    logs: list[str] = []

    def log(msg: str) -> None:
        logs.append(msg)
        if msg.startswith("step 2:"):
            os.kill(os.getpid(), signal.SIGTERM)

    train(_opts(tmp_path, steps=1000), log=log)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 3  # the signal came while step 2 was logged; step 3 ends it
    assert any("stopped at step 3 on request" in line for line in logs)
    assert signal.getsignal(signal.SIGTERM) is not None  # handler restored


def test_bf16_transforms_keep_latents_and_pixels_float32():
    torch.manual_seed(0)
    model = new_model(ModelConfig(16, 16, (0.002, 0.02, 0.2)))
    x, level = torch.rand(2, 3, 64, 64), torch.tensor([0.5, 1.5])
    ref = rd_loss(model, x, level)
    model.transform_autocast = torch.bfloat16
    inner = []
    model.g_a[0].register_forward_hook(lambda m, i, o: inner.append(o.dtype))
    model.g_s[0].register_forward_hook(lambda m, i, o: inner.append(o.dtype))
    y = model.analysis(x, level)
    assert y.dtype == torch.float32 and model.synthesis(y, level).dtype == torch.float32
    mixed = rd_loss(model, x, level)
    mixed["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert inner and set(inner) == {torch.bfloat16}  # the bodies did run in bf16
    # bf16 bodies change the result a little, not a lot.
    assert 0 < abs(float(mixed["loss"].detach()) / float(ref["loss"].detach()) - 1) < 0.05


@pytest.mark.parametrize("family", ["hyperprior", "channel-context"])
def test_gpu_burst_dry_run(tmp_path, family):
    """The burst script end to end on CPU: tiny shard, a few seconds of training, export,
    the encode/decode check and a quick bench; what comes back fits the device's limits."""
    shard, kodak = _images(tmp_path / "shard"), _images(tmp_path / "kodak", 1)
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu_burst.py"), "dry-run", "--out",
           str(out), "--run-dir", str(tmp_path / "run"), "--data", str(shard), "--kodak",
           str(kodak), "--seconds", "8", "--eval-images", "1", "--family", family,
           "--freeze-transforms", "2"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                            env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) <= 8 and all(p.stat().st_size < 16 * 2**20 for p in files)
    name = {"hyperprior": "aec-hp-ckbd-2", "channel-context": "aec-hp-elic"}[family]
    card = json.loads((out / "models" / f"{name}.json").read_text())
    assert card.get("family", "hyperprior-checkerboard") == {
        "hyperprior": "hyperprior-checkerboard",
        "channel-context": "hyperprior-channel-checkerboard"}[family]
    assert card["training"]["steps"] > 0
    if family == "hyperprior":  # the burst trains the levels up to 0.6 (EXTRA_LAMBDAS)
        assert card["config"]["lambdas"][-1] == 0.6
    check = json.loads((out / "integer-check.json").read_text())
    assert check["rows"] and all(
        np.isclose(r["psnr_cpu_decode"], r["psnr_device_decode"]) for r in check["rows"])
    assert (out / "bench-summary.md").exists()


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_takes_bf16_where_the_device_computes_it(tmp_path, monkeypatch, native):
    monkeypatch.setattr(hyperprior_training, "native_bf16", lambda device: native)
    lines: list[str] = []
    train(_opts(tmp_path, steps=1), log=lines.append)
    model_line = next(line for line in lines if line.startswith("model:"))
    assert ("bf16" if native else "fp32") in model_line
