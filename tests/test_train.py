"""Training on a tiny model: steps, checkpoint/resume, export, and using the export."""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

from neuralcodec.codec import Codec
from neuralcodec.train import TrainOptions, export, train

from .conftest import photo_like

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
