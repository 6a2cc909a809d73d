"""The trainer's Kodak evaluation of training runs' checkpoints, at rate levels you choose.

A run evaluates itself at its lowest, middle and top level, so runs with different level
counts (9 or 10) report different levels; this evaluates each run's latest checkpoint at
the same ``--levels`` on the same images (the first ``--images`` of ``--folder``, as the
trainer's ``--eval-images``): likelihood bits per pixel and PSNR after rounding, as the
trainer computes them. For example, two channel-context runs step for step:

    python benchmarks/evaluate_runs.py aec-hp-ckbd ~/aec-runs/hp-elic \\
        ~/aec-runs/hp-elic-rate --levels 0,4,8
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._inputs import KODAK  # noqa: E402
from benchmarks._report import print_and_save  # noqa: E402


def load_run(run: Path):
    """(model, step) of a run folder's checkpoint, or of an installed model's weights
    (``run`` a model name), whichever family it is."""
    import torch

    from neuralcodec.training.loop import CHECKPOINT

    if not run.is_dir():
        from neuralcodec.families.hyperprior.weights import read_state
        from neuralcodec.families.zoo import find_model

        info = find_model(str(run))
        state = {"model": {k: v.float() for k, v in read_state(info)[0].items()},
                 "options": {"config": info.card["config"]},
                 "step": info.card.get("training", {}).get("steps")}
    else:
        with tempfile.TemporaryDirectory() as tmp:  # a running trainer may replace it
            copy = Path(tmp) / CHECKPOINT
            shutil.copy(run / CHECKPOINT, copy)
            state = torch.load(copy, map_location="cpu", weights_only=True)
    config = state["options"]["config"]
    if "groups" in config:
        from neuralcodec.families.channel_context.model import ChannelConfig
        from neuralcodec.training.channel_context import new_model

        model = new_model(ChannelConfig.from_dict(config))
    else:
        from neuralcodec.families.hyperprior.architecture import ModelConfig
        from neuralcodec.training.hyperprior import new_model

        model = new_model(ModelConfig.from_dict(config))
    model.load_state_dict(state["model"])
    return model, state["step"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path,
                        help="run folders (with checkpoint.pt) or installed model names")
    parser.add_argument("--levels", default="0,4,8",
                        type=lambda s: tuple(float(v) for v in s.split(",")))
    parser.add_argument("--folder", default=os.path.relpath(KODAK))
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()

    import torch

    from neuralcodec.training.data import list_images, load_rgb
    from neuralcodec.training.hyperprior import evaluate

    torch.set_num_threads(args.threads)
    images = [load_rgb(p, 4096) for p in list_images([args.folder])[: args.images]]
    result = {"levels": list(args.levels), "images": args.images, "runs": {}}
    for run in args.runs:
        model, step = load_run(run)
        rows = evaluate(model, images, torch.device("cpu"), args.levels)
        result["runs"][str(run)] = {"step": step, "rd": rows}
        print(f"{run.name} step {step}: " + "  ".join(
            f"L{r['level']:g} {r['bpp']:.4f} bpp {r['psnr']:.2f} dB" for r in rows), flush=True)
    print_and_save(result, args.out)


if __name__ == "__main__":
    main()
