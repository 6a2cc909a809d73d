"""Training speed on this machine's CPU: steps per hour of the trainer's variants, and
the Kodak evaluation each reaches after the same wall time from the same weights.

Each variant trains the shipped default model for ``--seconds`` (batch 8 of 128x128,
``--threads`` torch threads, the same data and seed, lr 1e-5), its steps per hour read
from the run's log after the first ``--settle`` seconds (data loading, compilation and
warm-up excluded);
then the weights it reached are evaluated on the first ``--eval-images`` Kodak images
(likelihood bits at the lowest, middle and top level, RD loss lambda*255^2*MSE + bpp
averaged over those levels):

    python benchmarks/train_speed.py --out benchmarks/results/train-speed.json

``--family channel-context`` times the channel-context model's frozen phase instead
(warm-started from the shipped model, lr 1e-4): its steps with and without ``g_s``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._report import save_json  # noqa: E402

VARIANTS = {
    "fp32 eager (before)": {"precision": "fp32"},
    "channels_last": {"precision": "fp32", "channels_last": True},
    "bf16 autocast": {"precision": "bf16"},
    "bf16 + channels_last": {"precision": "bf16", "channels_last": True},
    "compile": {"precision": "fp32", "compile": True},
    "channels_last + compile": {"precision": "fp32", "channels_last": True, "compile": True},
    "bf16 + compile": {"precision": "bf16", "compile": True},
    "bf16 + channels_last + compile": {"precision": "bf16", "channels_last": True,
                                       "compile": True},
}

# The channel-context model's first phase (transforms frozen), from the same warm start.
CHANNEL_VARIANTS = {
    "frozen: full loss (before)": {"freeze_transforms": 10**9, "precision": "fp32",
                                   "rate_only_while_frozen": False},
    "frozen: rate only": {"freeze_transforms": 10**9, "precision": "fp32"},
    "frozen: rate only, bf16": {"freeze_transforms": 10**9, "precision": "bf16",
                                "channels_last": True},
}


def steps_per_hour(rows: list[dict]) -> int | None:
    """Steps per hour between the first and the last of these log rows."""
    if len(rows) < 2 or rows[-1]["seconds"] <= rows[0]["seconds"]:
        return None
    return round(3600 * (rows[-1]["step"] - rows[0]["step"])
                 / (rows[-1]["seconds"] - rows[0]["seconds"]))


def rd_loss_of(rows: list[dict], lambdas: list[float]) -> float:
    """Mean over the evaluated levels of lambda * 255^2 * MSE + bpp."""
    import numpy as np

    losses = []
    for r in rows:
        lam = float(np.exp(np.interp(r["level"], range(len(lambdas)), np.log(lambdas))))
        mse = 10 ** (-r["psnr"] / 10)  # of pixels in [0, 1]
        losses.append(lam * 255**2 * mse + r["bpp"])
    return float(np.mean(losses))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+",
                        default=[str(ROOT.parent / "shared/datasets/train/pack-1")])
    parser.add_argument("--kodak", default=str(ROOT.parent / "shared/datasets/kodak"))
    parser.add_argument("--eval-images", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--settle", type=float, default=90)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--family", choices=["hyperprior", "channel-context"],
                        default="hyperprior")
    parser.add_argument("--variants", default=None, help="comma-separated (default: all)")
    parser.add_argument("--note", default="")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    variants = VARIANTS if args.family == "hyperprior" else CHANNEL_VARIANTS
    args.variants = args.variants or ",".join(variants)
    unknown = [v for v in args.variants.split(",") if v not in variants]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {list(variants)}")

    import torch

    from neuralcodec.families.zoo import DEFAULT_MODEL
    from neuralcodec.training.data import list_images, load_rgb
    from neuralcodec.training.hyperprior import TrainOptions, evaluate

    if args.family == "hyperprior":
        from neuralcodec.families.hyperprior.model import ModelConfig as Config
        from neuralcodec.training.hyperprior import new_model, train
        options, lr = TrainOptions, 1e-5
    else:
        from neuralcodec.families.channel_context.model import ChannelConfig as Config
        from neuralcodec.training.channel_context import ChannelTrainOptions as options
        from neuralcodec.training.channel_context import new_model, train
        lr = 1e-4

    images = [load_rgb(p, 4096) for p in list_images([args.kodak])[: args.eval_images]]
    results = []
    for name in args.variants.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            opts = options(  # no eval_dir: evaluated below, outside the timed run
                data=args.data, out=tmp, steps=10**9, seconds=args.seconds, lr=lr,
                lr_drop_at=1.0, log_every=1,
                eval_every=10**9, checkpoint_every=10**9, threads=args.threads,
                device="cpu", init=DEFAULT_MODEL, **variants[name],
            )
            t0 = time.time()
            train(opts, log=lambda m: None)
            wall = time.time() - t0
            log_text = (Path(tmp) / "log.jsonl").read_text()
            rows = [json.loads(line) for line in log_text.splitlines()]
            steady = [r for r in rows if r["seconds"] > args.settle] or rows[2:]
            state = torch.load(Path(tmp) / "checkpoint.pt", weights_only=True)
        model = new_model(Config.from_dict(state["options"]["config"]))
        model.load_state_dict(state["model"])
        rd = evaluate(model, images, torch.device("cpu"))
        row = {
            "variant": name, "options": variants[name], "wall_s": round(wall, 1),
            "steps": state["step"] - rows[0]["step"] + 1,
            "steps_per_hour": steps_per_hour(steady),
            "kodak_rd": rd,
            "kodak_rd_loss": rd_loss_of(rd, state["options"]["config"]["lambdas"]),
        }
        results.append(row)
        print(f"{name:32s} {row['steps_per_hour']} steps/h, {row['steps']} steps in "
              f"{row['wall_s']} s, Kodak RD loss {row['kodak_rd_loss']:.4f}", flush=True)
    base = results[0]["steps_per_hour"]
    for row in results:
        if base and row["steps_per_hour"]:
            row["speedup"] = round(row["steps_per_hour"] / base, 2)
    report = {"machine_note": args.note, "family": args.family, "threads": args.threads,
              "batch": 8, "patch": 128,
              "seconds_per_variant": args.seconds, "settle_s": args.settle, "results": results}
    print(json.dumps([{k: r.get(k) for k in ("variant", "steps_per_hour", "speedup",
                                             "kodak_rd_loss")} for r in results], indent=1))
    if args.out:
        save_json(report, Path(args.out))


if __name__ == "__main__":
    main()
