"""Rate-distortion training of the hyperprior, with checkpoint/resume and export.

Each step samples a continuous rate level per image, so the whole quality range is
trained at once; the loss is lambda(level) * 255^2 * MSE + bpp. A second optimizer fits
the entropy bottleneck's quantiles (CompressAI's auxiliary loss).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .data import CropSampler, list_images, load_rgb
from .hyperprior import save_model
from .model import HyperpriorCheckerboard, ModelConfig, count_parameters, rd_loss

# A local training state, never shipped: weights go out as safetensors.
CHECKPOINT = "checkpoint.pt"


@dataclass
class TrainOptions:
    data: list[str]
    out: str = "runs/default"
    eval_dir: str | None = None
    steps: int = 20000
    batch_size: int = 8
    patch: int = 128
    lr: float = 3e-4
    aux_lr: float = 1e-3
    lr_drop_at: float = 0.85  # fraction of `steps` after which lr is divided by 10
    clip: float = 1.0
    eval_every: int = 1000
    eval_images: int = 6
    checkpoint_every: int = 200
    log_every: int = 50
    device: str = "auto"
    seed: int = 0
    threads: int | None = None
    config: dict = field(default_factory=lambda: ModelConfig().to_dict())
    relevel: bool = False  # resuming: move the checkpoint's rate levels to config's lambdas


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA device is available")
    return torch.device(name)


def _main_parameters(model: HyperpriorCheckerboard) -> list[tuple[str, torch.nn.Parameter]]:
    """What the main optimizer trains, in its order (the quantiles have their own)."""
    return [(n, p) for n, p in model.named_parameters() if not n.endswith(".quantiles")]


def _optimizers(model: HyperpriorCheckerboard, opts: TrainOptions):
    main = [p for _, p in _main_parameters(model)]
    aux = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    return torch.optim.Adam(main, lr=opts.lr), torch.optim.Adam(aux, lr=opts.aux_lr)


def _lr_at(step: int, opts: TrainOptions) -> float:
    return opts.lr if step < opts.lr_drop_at * opts.steps else opts.lr / 10


@torch.no_grad()
def evaluate(model: HyperpriorCheckerboard, images: list[torch.Tensor], device) -> list[dict]:
    """Likelihood-based RD (rounding, no entropy coder) at the lowest, middle and top level."""
    from .image_io import pad_to_multiple  # local: keeps training free of coding imports

    model.eval()
    rows = []
    top = model.config.levels - 1
    for level in (0.0, top / 2, float(top)):
        bpps, psnrs = [], []
        for img in images:
            x = img.float().unsqueeze(0).to(device) / 255.0
            h, w = x.shape[2:]
            out = model(pad_to_multiple(x), torch.tensor([level], device=device))
            bits = sum((-torch.log2(lik)).sum() for lik in out["likelihoods"].values())
            x_hat = out["x_hat"][:, :, :h, :w].clamp(0, 1)
            mse = torch.mean((torch.round(x_hat * 255) - torch.round(x * 255)) ** 2)
            bpps.append(float(bits) / (h * w))
            psnrs.append(float(10 * torch.log10(255**2 / mse)))
        rows.append({"level": level, "bpp": float(np.mean(bpps)), "psnr": float(np.mean(psnrs))})
    model.train()
    return rows


def save_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def random_states(sampler: CropSampler, generators: dict[str, torch.Generator]) -> dict:
    """Every random stream a run draws from, so a resumed run continues exactly."""
    return {
        **{name: g.get_state() for name, g in generators.items()},
        "sampler_rng": sampler.get_state(),
        "torch_rng": torch.get_rng_state(),
        "python_rng": random.getstate(),
    }


def restore_random_states(
    state: dict, sampler: CropSampler, generators: dict[str, torch.Generator]
) -> None:
    for name, g in generators.items():
        g.set_state(state[name])
    sampler.set_state(state["sampler_rng"])
    torch.set_rng_state(state["torch_rng"])
    random.setstate(state["python_rng"])


class RunLog:
    """A run's JSON-lines logs (log.jsonl, eval.jsonl) and its training speed."""

    def __init__(self, out: Path, step: int):
        self.out = out
        self._t0, self._step = time.time(), step

    def steps_per_s(self, step: int) -> float:
        """Steps per second since the previous call."""
        rate = (step - self._step) / max(time.time() - self._t0, 1e-9)
        self._t0, self._step = time.time(), step
        return rate

    def append(self, name: str, row: dict) -> None:
        with open(self.out / name, "a") as f:
            f.write(json.dumps(row) + "\n")

    def evaluation(self, step: int, rows: list[dict], label: Callable[[dict], str],
                   log: Callable[[str], None]) -> None:
        """Log one Kodak evaluation (a bpp/PSNR point per rate) and append it to eval.jsonl."""
        log(f"eval step {step}: " + "  ".join(
            f"{label(r)} {r['bpp']:.3f} bpp {r['psnr']:.2f} dB" for r in rows))
        self.append("eval.jsonl", {"step": step, "rd": rows})


@dataclass
class RunSetup:
    """What every training run starts from: device, folders, data and eval images."""

    device: torch.device
    out: Path
    checkpoint: Path
    sampler: CropSampler
    eval_images: list[torch.Tensor]


def start_run(opts, log) -> RunSetup:
    """Threads, device, seed, output folder, training crops and eval images of a run;
    ``opts`` is any options object with the fields of :class:`TrainOptions` used here."""
    if opts.threads:
        torch.set_num_threads(opts.threads)
    device = pick_device(opts.device)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(opts.seed)
    sampler = CropSampler(opts.data, patch=opts.patch, seed=opts.seed, log=log)
    log(f"training images: {len(sampler)}")
    eval_images = []
    if opts.eval_dir:
        eval_images = [load_rgb(p, 4096) for p in list_images([opts.eval_dir])[: opts.eval_images]]
    return RunSetup(device, out, out / CHECKPOINT, sampler, eval_images)


def train(opts: TrainOptions, log=print) -> Path:
    """Train (resuming from ``opts.out``/checkpoint.pt if present); returns the run folder."""
    run = start_run(opts, log)
    device, out, ckpt_path = run.device, run.out, run.checkpoint
    sampler, eval_images = run.sampler, run.eval_images
    state = None
    if ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=device, weights_only=True)
        if opts.relevel and relevel_state(state, opts.config["lambdas"]):
            log(f"moved {ckpt_path}'s rate levels to lambdas {opts.config['lambdas']}")
        # A resumed run keeps its own architecture and rate levels, whatever today's defaults.
        opts.config = state["options"]["config"]
    config = ModelConfig.from_dict(opts.config)
    model = HyperpriorCheckerboard(config).to(device)
    optimizer, aux_optimizer = _optimizers(model, opts)
    log(f"model: {count_parameters(model) / 1e6:.2f} M parameters, device {device}")

    step = 0
    level_rng = torch.Generator().manual_seed(opts.seed + 1)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        aux_optimizer.load_state_dict(state["aux_optimizer"])
        step = state["step"]
        restore_random_states(state, sampler, {"level_rng": level_rng})
        log(f"resumed from {ckpt_path} at step {step}")

    relevels = state.get("relevels", []) if state is not None else []
    run_log = RunLog(out, step)
    model.train()
    while step < opts.steps:
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, opts)
        x = sampler.batch(opts.batch_size).to(device)
        level = torch.rand(opts.batch_size, generator=level_rng) * (config.levels - 1)
        result = rd_loss(model, x, level.to(device))
        if not torch.isfinite(result["loss"]):
            log(f"step {step}: non-finite loss, batch skipped")
            optimizer.zero_grad(set_to_none=True)
            step += 1
            continue
        optimizer.zero_grad(set_to_none=True)
        result["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), opts.clip)
        optimizer.step()
        aux_loss = model.aux_loss()
        aux_optimizer.zero_grad(set_to_none=True)
        aux_loss.backward()
        aux_optimizer.step()
        step += 1

        if step % opts.log_every == 0:
            rate = run_log.steps_per_s(step)
            row = {k: float(v.detach()) for k, v in result.items()}
            row.update(step=step, aux=float(aux_loss.detach()), lr=_lr_at(step, opts),
                       steps_per_s=rate)
            log(
                f"step {step}: loss {row['loss']:.3f} bpp {row['bpp']:.3f} "
                f"psnr {row['psnr']:.2f} aux {row['aux']:.1f} ({rate:.2f} steps/s)"
            )
            run_log.append("log.jsonl", row)
        if eval_images and (step % opts.eval_every == 0 or step == opts.steps):
            rows = evaluate(model, eval_images, device)
            run_log.evaluation(step, rows, lambda r: f"L{r['level']:.1f}", log)
        if step % opts.checkpoint_every == 0 or step == opts.steps:
            save_checkpoint(ckpt_path, {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "aux_optimizer": aux_optimizer.state_dict(),
                "step": step,
                **random_states(sampler, {"level_rng": level_rng}),
                "options": asdict(opts),
                "relevels": relevels,
            })
    return out


def relevel_state(state: dict, lambdas: list[float]) -> bool:
    """Move a checkpoint's rate levels to new lambdas (in memory); False if already there.

    Each gain bank is a function of log(lambda); the new levels start from that function
    interpolated (or linearly extrapolated past the ends) at the new lambdas. Adam's
    moments of the gains are dropped, as they belong to the old levels.
    """
    old_config = ModelConfig.from_dict(state["options"]["config"])
    new_config = ModelConfig(old_config.N, old_config.M, tuple(float(v) for v in lambdas))
    if new_config.lambdas == old_config.lambdas:
        return False
    old_x = np.log(np.asarray(old_config.lambdas))
    new_x = np.log(np.asarray(new_config.lambdas))
    # Segment of the old curve each new level reads from (end segments extrapolate).
    seg = np.clip(np.searchsorted(old_x, new_x) - 1, 0, len(old_x) - 2)
    frac = torch.tensor((new_x - old_x[seg]) / (old_x[seg + 1] - old_x[seg]),
                        dtype=torch.float32).view(-1, 1)
    seg = torch.from_numpy(seg)
    for name, value in list(state["model"].items()):
        if name.endswith("log_gain"):
            frac = frac.to(value.device)
            state["model"][name] = (1 - frac) * value[seg] + frac * value[seg + 1]

    for index, (name, _) in enumerate(_main_parameters(HyperpriorCheckerboard(old_config))):
        if name.endswith("log_gain"):
            state["optimizer"]["state"].pop(index, None)
    new_lambdas = list(new_config.lambdas)
    state["options"] = {**state["options"],
                        "config": {**state["options"]["config"], "lambdas": new_lambdas}}
    state.setdefault("relevels", []).append(
        {"step": state["step"], "from": list(old_config.lambdas), "to": new_lambdas})
    return True


def relevel_checkpoint(path: str | Path, lambdas: list[float]) -> None:
    """:func:`relevel_state` on a checkpoint file, in place."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if relevel_state(state, lambdas):
        save_checkpoint(Path(path), state)


def export(run_dir: str | Path, name: str, directory: str | Path, card: dict | None = None) -> Path:
    """Turn a run's checkpoint into shippable weights (safetensors + JSON card)."""
    state = torch.load(Path(run_dir) / CHECKPOINT, map_location="cpu", weights_only=True)
    config = ModelConfig.from_dict(state["options"]["config"])
    model = HyperpriorCheckerboard(config)
    model.load_state_dict(state["model"])
    info = {"training": {"steps": state["step"], "options": state["options"],
                         "relevels": state.get("relevels", [])}}
    info.update(card or {})
    return save_model(model, Path(directory), name, info)


if __name__ == "__main__":  # python -m neuralcodec.train ... == aec train ...
    import sys

    from .cli import run

    sys.exit(run(["train", *sys.argv[1:]]))
