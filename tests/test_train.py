"""Training on a tiny model: steps, checkpoint/resume, export, and using the export."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from PIL import Image

from neuralcodec.cli import run
from neuralcodec.codec import Codec
from neuralcodec.families.hyperprior.model import ModelConfig
from neuralcodec.training.distributed import World
from neuralcodec.training.hyperprior import (
    TrainOptions,
    _backward_step,
    _optimizers,
    export,
    new_model,
    relevel_checkpoint,
    train,
)

from .helpers import photo_like

TINY = {"N": 16, "M": 16, "lambdas": [0.002, 0.02, 0.2]}


def _opts(tmp_path, steps):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    for i in range(3):
        Image.fromarray(photo_like(80, 72, seed=i), "RGB").save(data / f"{i}.png")
    return TrainOptions(data=[str(data)], out=str(tmp_path / "run"), eval_dir=str(data),
                        steps=steps, batch_size=2, patch=64, eval_every=2,
                        checkpoint_every=2, log_every=1, config=TINY)


def test_train_resume_export_and_use(tmp_path, monkeypatch):
    logs: list[str] = []
    train(_opts(tmp_path, 2), log=logs.append)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 2
    train(_opts(tmp_path, 4), log=logs.append)
    assert any("resumed" in line and "step 2" in line for line in logs)
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"] == 4
    eval_log = (tmp_path / "run" / "eval.jsonl").read_text().splitlines()
    evals = [json.loads(line) for line in eval_log]
    assert [e["step"] for e in evals] == [2, 4]

    weights = export(tmp_path / "run", "tiny-test", tmp_path / "models", {"summary": "t"})
    card = json.loads(weights.with_suffix(".json").read_text())
    assert card["config"]["N"] == 16 and card["training"]["steps"] == 4

    monkeypatch.setenv("AEC_MODEL_PATH", str(tmp_path / "models"))
    codec = Codec("tiny-test", device="cpu")
    im = Image.fromarray(photo_like(40, 30), "RGB")
    out = codec.decode(codec.encode(im, 50))
    assert out.size == (40, 30)


def test_resume_continues_exactly(tmp_path):
    """Two steps + two resumed steps equal four uninterrupted steps."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    train(_opts(a, 2), log=lambda m: None)
    train(_opts(a, 4), log=lambda m: None)
    train(_opts(b, 4), log=lambda m: None)
    sa = torch.load(a / "run" / "checkpoint.pt", weights_only=True)["model"]
    sb = torch.load(b / "run" / "checkpoint.pt", weights_only=True)["model"]
    for k in sa:
        assert np.allclose(sa[k].numpy(), sb[k].numpy(), atol=1e-6), k


def test_relevel_moves_rate_levels_and_training_goes_on(tmp_path):
    """New levels read the old gain curve at their lambdas; resuming keeps them even
    though the options passed in still name the old levels."""
    logs: list[str] = []
    train(_opts(tmp_path, 2), log=logs.append)
    ckpt = tmp_path / "run" / "checkpoint.pt"
    before = torch.load(ckpt, weights_only=True)
    new = [0.0005, 0.002, 0.02, 0.4]  # below, at, at and above the old levels
    relevel_checkpoint(ckpt, new)
    after = torch.load(ckpt, weights_only=True)
    assert after["options"]["config"]["lambdas"] == new
    for name, old in before["model"].items():
        if name.endswith("log_gain"):
            moved = after["model"][name]
            assert moved.shape == (4, old.shape[1])
            assert torch.allclose(moved[1], old[0]) and torch.allclose(moved[2], old[1])
            # Past the ends: linear extrapolation in log(lambda) along the end segments.
            assert torch.allclose(moved[0], old[0] - (old[1] - old[0]) * np.log(4) / np.log(10),
                                  atol=1e-5)
            assert torch.allclose(moved[3], old[2] + (old[2] - old[1]) * np.log(2) / np.log(10),
                                  atol=1e-5)

    train(_opts(tmp_path, 4), log=logs.append)
    final = torch.load(ckpt, weights_only=True)
    assert final["step"] == 4
    assert final["options"]["config"]["lambdas"] == new
    assert final["relevels"][0]["from"] == TINY["lambdas"]
    card = json.loads(export(tmp_path / "run", "tiny-relevel", tmp_path / "m").with_suffix(
        ".json").read_text())
    assert card["config"]["lambdas"] == new and card["training"]["relevels"][0]["step"] == 2


def test_cli_lambdas(tmp_path, capsys):
    """aec train --lambdas: bad lists fail in one line; on an existing run it relevels."""
    opts = _opts(tmp_path, 2)
    base = ["train", *opts.data, "--out", opts.out, "--batch-size", "2", "--patch", "64",
            "--N", "16", "--M", "16", "--checkpoint-every", "1"]
    for bad in ("0.01,x", "0.02,0.01", "0.01"):
        assert run([*base, "--steps", "1", "--lambdas", bad]) != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--lambdas" in err[0]
    assert run([*base, "--steps", "1", "--lambdas", "0.002,0.02,0.2"]) == 0
    assert run([*base, "--steps", "2", "--lambdas", "0.001,0.01,0.1,0.3",
                "--lr", "1e-4", "--lr-drop-at", "0.5"]) == 0
    assert "moved" in capsys.readouterr().err
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 2 and state["options"]["config"]["lambdas"] == [0.001, 0.01, 0.1, 0.3]
    assert state["options"]["lr"] == 1e-4 and state["options"]["lr_drop_at"] == 0.5
    # the second of 2 steps is past the drop at 0.5 * 2 steps, so it ran at lr / 10
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-5)


def test_relevel_model_adds_a_top_level_and_keeps_the_rest(tmp_path, monkeypatch, capsys):
    """python -m neuralcodec.training.relevel: a shipped model gains a level past its top
    (read off the gain curve) with every other tensor unchanged; the new top quality
    codes at a higher rate and PSNR than the old top."""
    from safetensors.torch import load_file

    from neuralcodec.metrics import psnr
    from neuralcodec.training.relevel import main

    train(_opts(tmp_path, 2), log=lambda m: None)
    old_path = export(tmp_path / "run", "tiny-test", tmp_path / "old")
    lambdas = [*TINY["lambdas"], 0.8]
    assert main([str(old_path), "--lambdas", ",".join(map(str, lambdas)),
                 "--export", "tiny-up", "--export-dir", str(tmp_path / "new")]) == 0
    new_path = tmp_path / "new" / "tiny-up.safetensors"
    old, new = load_file(str(old_path)), load_file(str(new_path))
    assert old.keys() == new.keys()
    for name, tensor in old.items():
        if name.endswith("log_gain"):
            assert torch.equal(new[name][:-1], tensor) and new[name].shape[0] == 4
        elif name != "integer.gain_z_inv":
            assert torch.equal(new[name], tensor), name
    card = json.loads(new_path.with_suffix(".json").read_text())
    assert card["config"]["lambdas"] == lambdas
    assert card["training"]["relevels"][-1] == {"step": 2, "from": TINY["lambdas"],
                                                "to": lambdas}

    im = Image.fromarray(photo_like(64, 64), "RGB")
    results = []
    for directory, name in ((tmp_path / "old", "tiny-test"), (tmp_path / "new", "tiny-up")):
        monkeypatch.setenv("AEC_MODEL_PATH", str(directory))
        codec = Codec(name, device="cpu")
        data = codec.encode(im, 100)
        results.append((len(data), psnr(np.asarray(im), np.asarray(codec.decode(data)))))
    (old_size, old_psnr), (new_size, new_psnr) = results
    assert new_size > old_size and new_psnr > old_psnr

    assert main(["aec-vq", "--lambdas", "0.1,0.2", "--export", "x",
                 "--export-dir", str(tmp_path / "vq")]) == 1
    assert "not a hyperprior" in capsys.readouterr().err


def test_clipping_sees_only_the_main_losss_gradients():
    """The quantiles' gradients (left from the previous step's auxiliary loss) must not
    enter the main loss's gradient clipping: the step is the same with or without them."""
    torch.manual_seed(0)
    x = torch.rand(2, 3, 64, 64)
    level = torch.tensor([0.5, 1.5])
    model = new_model(ModelConfig.from_dict(TINY))
    opts = TrainOptions(data=[], config=TINY)
    main, aux = _optimizers(model, opts)
    _backward_step(model, model, x, level, main, aux, 1.0, World())  # Adam has a history
    after = []
    for stale in (False, True):
        twin = copy.deepcopy(model)
        twin_main, twin_aux = _optimizers(twin, opts)
        # Deep copies: loading keeps the very tensors, which the twin's step updates in place.
        twin_main.load_state_dict(copy.deepcopy(main.state_dict()))
        twin_aux.load_state_dict(copy.deepcopy(aux.state_dict()))
        quantiles = twin.entropy_bottleneck.quantiles
        quantiles.grad = torch.full_like(quantiles, 1e3) if stale else None
        torch.manual_seed(1)
        _backward_step(twin, twin, x, level, twin_main, twin_aux, 1.0, World())
        after.append(dict(twin.named_parameters()))
    for name, value in after[0].items():
        if not name.endswith("quantiles"):
            torch.testing.assert_close(after[1][name], value, rtol=0, atol=1e-7, msg=name)


TRAINER_MODULES = {"hyperprior": ("hyperprior", "TrainOptions"),
                   "channel-context": ("channel_context", "ChannelTrainOptions"),
                   "vq": ("vq", "VQTrainOptions")}


def _trained_options(monkeypatch, args: list[str], family: str) -> list:
    """What ``aec train ARGS`` hands the family's trainer (which records it, not training)."""
    import importlib

    module = importlib.import_module(f"neuralcodec.training.{TRAINER_MODULES[family][0]}")
    handed: list = []
    monkeypatch.setattr(module, "train", lambda opts, log=print: handed.append(opts))
    assert run(["train", *args]) == 0
    return handed


def test_cli_vq_trains_with_the_vq_trainers_defaults(tmp_path, monkeypatch):
    """aec train --family vq used to run with the hyperprior's 20,000 steps, auto device
    and runs/default instead of VQTrainOptions' 3,000, cpu and runs/vq."""
    (opts,) = _trained_options(monkeypatch, [str(tmp_path), "--family", "vq"], "vq")
    assert (opts.steps, opts.device, opts.out) == (3000, "cpu", "runs/vq")


@pytest.mark.parametrize("family", sorted(TRAINER_MODULES))
def test_cli_options_are_the_trainers_defaults_and_what_was_given(tmp_path, monkeypatch,
                                                                   family):
    import importlib

    module_name, class_name = TRAINER_MODULES[family]
    options = getattr(importlib.import_module(f"neuralcodec.training.{module_name}"),
                      class_name)
    (opts,) = _trained_options(monkeypatch, [str(tmp_path), "--family", family], family)
    assert opts == options(data=[str(tmp_path)])
    (opts,) = _trained_options(
        monkeypatch, [str(tmp_path), "--family", family, "--steps", "7", "--lr", "0.002",
                      "--device", "cpu", "--init", "some-model", "--out", "runs/x"], family)
    assert opts == options(data=[str(tmp_path)], steps=7, lr=0.002, device="cpu",
                           init="some-model", out="runs/x")


def test_cli_options_of_another_family_are_a_one_line_usage_error(tmp_path, capsys):
    for family, options, message in (
            ("vq", ["--seconds", "3", "--compile"], "--seconds and --compile are for the "
             "hyperprior and channel-context families, not vq"),
            ("vq", ["--nproc", "2"], "--nproc is for the hyperprior and channel-context"),
            ("channel-context", ["--lambdas", "0.1,0.2"], "--lambdas is for the hyperprior "
             "family, not channel-context")):
        assert run(["train", str(tmp_path), "--family", family, *options]) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and message in err[0], err


def test_cli_help_shows_each_familys_defaults(capsys):
    """aec train --help: every option, with each family's default where they differ;
    --family F --help: F's options alone, with F's defaults."""
    import re

    def options_help(*args: str) -> str:
        assert run(["train", *args, "--help"]) == 0
        # one line per option, click's wrapping undone
        return re.sub(r"\s+", " ", capsys.readouterr().out)

    every = options_help()
    assert "--steps INTEGER RANGE" in every and "--freeze-transforms" in every
    assert "[default: hyperprior, channel-context: 20000; vq: 3000; x>=1]" in every
    assert "[default: hyperprior: runs/default; channel-context: runs/channel; vq: runs/vq]" \
        in every
    assert "(channel-context) Steps at the start of the run" in every
    vq = options_help("--family", "vq")
    assert "[default: 3000; x>=1]" in vq and "[default: cpu]" in vq
    for other in ("--freeze-transforms INTEGER", "--nproc INTEGER", "--seconds FLOAT"):
        assert other not in vq
    channel = options_help("--family=channel-context")
    assert "[default: runs/channel]" in channel and "[default: aec-hp-ckbd]" in channel
    assert "--lambdas TEXT" not in channel and "(channel-context)" not in channel


def test_cli_train_help_loads_no_torch():
    import subprocess
    import sys

    script = ("import sys\nfrom neuralcodec.cli import run\n"
              "assert run(['train', '--family', 'vq', '--help']) == 0\n"
              "print('torch loaded:', 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    assert done.stdout.splitlines()[-1] == "torch loaded: False"
