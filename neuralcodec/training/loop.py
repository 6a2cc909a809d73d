"""The training loop: rate-distortion training of the hyperprior, checkpoint/resume,
data parallelism under torchrun, and export.

Each step samples a continuous rate level per image, so the whole quality range is
trained at once; the loss is lambda(level) * 255^2 * MSE + bpp. A second optimizer fits
the entropy bottleneck's quantiles (CompressAI's auxiliary loss).
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..families.hyperprior import PAD_MULTIPLE
from ..families.hyperprior.model import HyperpriorCheckerboard, ModelConfig
from ..families.hyperprior.weights import save_model
from ..io.tensors import pad
from . import distributed
from .data import CropSampler, list_images, load_rgb
from .distributed import World, close_world, init_world
from .hyperprior import count_parameters, new_model, rd_loss

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
    # -- speed ----------------------------------------------------------------------
    precision: str = "fp32"  # "bf16": g_a/g_s under bfloat16 autocast (see the model)
    compile: bool = False  # torch.compile the training forward (falls back to eager)
    channels_last: bool = False
    crops_on_device: bool = False  # keep the images on the training device and crop there
    # -- runs of fixed wall time (a GPU burst) and runs started from shipped weights -----
    seconds: float | None = None  # stop after this many seconds of this process (with a
    # checkpoint); the lr drop then falls at lr_drop_at of this time instead of the steps
    init: str | None = None  # a new run starts from these weights (model name or file)
    warmup: int = 0  # steps of linear lr warm-up at the start of this process (a run
    # started from weights, or resumed after its optimizer state was lost, needs one)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA device is available")
    return torch.device(name)


def _main_parameters(model: HyperpriorCheckerboard) -> list[tuple[str, torch.nn.Parameter]]:
    """What the main optimizer trains, in its order (the quantiles have their own)."""
    return [(n, p) for n, p in model.named_parameters() if not n.endswith(".quantiles")]


def _optimizers(model: HyperpriorCheckerboard, opts: TrainOptions, fused: bool = False):
    main = [p for _, p in _main_parameters(model)]
    aux = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    return (torch.optim.Adam(main, lr=opts.lr, fused=fused or None),
            torch.optim.Adam(aux, lr=opts.aux_lr))


def _lr_at(step: int, opts: TrainOptions, elapsed: float = 0.0, steps_here: int = 0) -> float:
    """The schedule: lr, then lr / 10 after ``lr_drop_at`` of the run (of its steps, or of
    its seconds for a run of fixed wall time); ``steps_here`` (steps this process has
    taken) below ``opts.warmup`` scales it down linearly."""
    if opts.seconds is not None:
        late = elapsed >= opts.lr_drop_at * opts.seconds
    else:
        late = step >= opts.lr_drop_at * opts.steps
    lr = opts.lr / 10 if late else opts.lr
    if steps_here < opts.warmup:
        lr *= (steps_here + 1) / opts.warmup
    return lr


@torch.no_grad()
def evaluate(model: HyperpriorCheckerboard, images: list[torch.Tensor], device) -> list[dict]:
    """Likelihood-based RD (rounding, no entropy coder) at the lowest, middle and top level."""
    model.eval()
    autocast, model.transform_autocast = model.transform_autocast, None  # as coding runs
    rows = []
    top = model.config.levels - 1
    for level in (0.0, top / 2, float(top)):
        bpps, psnrs = [], []
        for img in images:
            x = img.float().unsqueeze(0).to(device) / 255.0
            h, w = x.shape[2:]
            out = model(pad(x, PAD_MULTIPLE), torch.tensor([level], device=device))
            bits = sum((-torch.log2(lik)).sum() for lik in out["likelihoods"].values())
            x_hat = out["x_hat"][:, :, :h, :w].clamp(0, 1)
            mse = torch.mean((torch.round(x_hat * 255) - torch.round(x * 255)) ** 2)
            bpps.append(float(bits) / (h * w))
            psnrs.append(float(10 * torch.log10(255**2 / mse)))
        rows.append({"level": level, "bpp": float(np.mean(bpps)), "psnr": float(np.mean(psnrs))})
    model.train()
    model.transform_autocast = autocast
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
    # A checkpoint loaded onto a GPU has its RNG states there; generators want them on CPU.
    for name, g in generators.items():
        g.set_state(state[name].cpu())
    sampler.set_state(state["sampler_rng"])
    torch.set_rng_state(state["torch_rng"].cpu())
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
    sampler = CropSampler(opts.data, patch=opts.patch, seed=opts.seed, log=log,
                          device=device if getattr(opts, "crops_on_device", False) else "cpu")
    log(f"training images: {len(sampler)}")
    eval_images = []
    if opts.eval_dir:
        eval_images = [load_rgb(p, 4096) for p in list_images([opts.eval_dir])[: opts.eval_images]]
    return RunSetup(device, out, out / CHECKPOINT, sampler, eval_images)


def initial_state(opts: TrainOptions) -> dict:
    """A new run's starting point from shipped weights (``opts.init``), as a checkpoint-like
    state without optimizer moments; moved to ``opts.config``'s levels if ``opts.relevel``."""
    from ..families.hyperprior.weights import read_state
    from ..families.zoo import find_model

    info = find_model(opts.init)
    weights, _, _ = read_state(info)
    training = info.card.get("training", {})
    state = {"model": weights, "optimizer": {"state": {}},
             "step": training.get("steps", 0),  # the step count continues
             "options": {"config": info.card["config"]},
             "relevels": training.get("relevels", [])}
    if opts.relevel:
        relevel_state(state, opts.config["lambdas"])
    return state


def _configure_speed(model: HyperpriorCheckerboard, opts: TrainOptions, device,
                     world: World, log):
    """Apply the speed options; returns the module the training steps call."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    if opts.precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be fp32 or bf16, got {opts.precision!r}")
    model.transform_autocast = torch.bfloat16 if opts.precision == "bf16" else None
    if (opts.precision == "bf16" and device.type == "cpu"
            and "AVX512" not in torch.backends.cpu.get_cpu_capability()):
        # Without AVX-512 (BF16) torch runs bf16 convolutions on slow reference kernels
        # (see benchmarks/results/train-speed.json, from an AVX2-only EPYC).
        log(f"note: this CPU ({torch.backends.cpu.get_cpu_capability()}) has no native "
            "bf16 convolutions; --precision bf16 will be much slower than fp32")
    if opts.channels_last:
        model.to(memory_format=torch.channels_last)
    forward = distributed.wrap(model, world)
    return torch.compile(forward) if opts.compile else forward


def _backward_step(forward, model, x, level, optimizer, aux_optimizer, clip: float,
                   world: World):
    """One optimisation step; returns (rd terms, aux loss), or None if the loss was not
    finite on any rank (the batch is skipped everywhere)."""
    result = rd_loss(model, x, level, forward)
    optimizer.zero_grad(set_to_none=True)
    if world.any(not torch.isfinite(result["loss"]).item()):
        return None
    result["loss"].backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    aux_loss = model.aux_loss()
    aux_optimizer.zero_grad(set_to_none=True)
    aux_loss.backward()
    world.average_gradients(aux_optimizer.param_groups[0]["params"])
    aux_optimizer.step()
    return result, aux_loss


def _load_start(opts: TrainOptions, ckpt_path: Path, device, log) -> tuple[dict | None, bool]:
    """(state to start from, whether it is a checkpoint of this run being resumed)."""
    if ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=device, weights_only=True)
        if opts.relevel and relevel_state(state, opts.config["lambdas"]):
            log(f"moved {ckpt_path}'s rate levels to lambdas {opts.config['lambdas']}")
        return state, True
    if opts.init:
        log(f"starting from the weights of {opts.init}")
        return initial_state(opts), False
    return None, False


def _restore_streams(state: dict, sampler, generators, world: World, log) -> None:
    """This rank's random streams from a checkpoint (rank 0's are also stored top-level,
    as a single-process run stores them)."""
    per_rank = state.get("rank_random_states")
    if world.distributed:
        if per_rank is None or len(per_rank) != world.size:
            log("the checkpoint's data streams are for another number of processes: "
                "new streams (the run goes on, but not exactly as it would have)")
            return
        restore_random_states(per_rank[world.rank], sampler, generators)
    else:
        restore_random_states(state, sampler, generators)


def train(opts: TrainOptions, log=print) -> Path:
    """Train (resuming from ``opts.out``/checkpoint.pt if present); returns the run folder.

    Under torchrun each process is one rank of a data-parallel run (see
    :mod:`neuralcodec.distributed`); ``opts.batch_size`` is per process.
    """
    t_start = time.time()
    world = init_world(pick_device(opts.device))
    if world.distributed:
        log = log if world.is_main else (lambda msg: None)
        opts = replace(opts, seed=opts.seed + 1000 * world.rank,
                       device=str(world.device(pick_device(opts.device))))
    run = start_run(opts, log)
    device, out, ckpt_path = run.device, run.out, run.checkpoint
    sampler, eval_images = run.sampler, run.eval_images
    state, resumed = _load_start(opts, ckpt_path, device, log)
    if state is not None:
        # A run keeps its own architecture and rate levels, whatever today's defaults.
        opts.config = state["options"]["config"]
    config = ModelConfig.from_dict(opts.config)
    model = new_model(config).to(device)
    step = 0
    if state is not None:
        model.load_state_dict(state["model"])
        step = state["step"]
    optimizer, aux_optimizer = _optimizers(model, opts, fused=device.type == "cuda")
    log(f"model: {count_parameters(model) / 1e6:.2f} M parameters, device {device}, "
        f"{opts.precision}{', compiled' if opts.compile else ''}"
        f"{', channels_last' if opts.channels_last else ''}"
        f"{f', {world.size} processes' if world.distributed else ''}")

    level_rng = torch.Generator().manual_seed(opts.seed + 1)
    if resumed:
        optimizer.load_state_dict(state["optimizer"])
        aux_optimizer.load_state_dict(state["aux_optimizer"])
        _restore_streams(state, sampler, {"level_rng": level_rng}, world, log)
        log(f"resumed from {ckpt_path} at step {step}")
    forward = _configure_speed(model, opts, device, world, log)
    memory_format = torch.channels_last if opts.channels_last else torch.contiguous_format

    relevels = state.get("relevels", []) if state is not None else []
    run_log = RunLog(out, step)
    stop = _StopRequest()
    model.train()
    compiled_ok = not opts.compile
    first_step = step
    last = step >= opts.steps
    try:
        while not last:
            elapsed = time.time() - t_start
            lr = _lr_at(step, opts, elapsed, step - first_step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x = sampler.batch(opts.batch_size).to(device).contiguous(memory_format=memory_format)
            level = (torch.rand(opts.batch_size, generator=level_rng)
                     * (config.levels - 1)).to(device)
            args = (model, x, level, optimizer, aux_optimizer, opts.clip, world)
            try:
                done = _backward_step(forward, *args)
                compiled_ok = True
            except Exception as exc:  # a compiler failure must not cost the run
                if compiled_ok:
                    raise
                log(f"torch.compile failed ({type(exc).__name__}: {exc}); training eagerly")
                forward, compiled_ok = distributed.wrap(model, world), True
                done = _backward_step(forward, *args)
            step += 1
            out_of_time = opts.seconds is not None and time.time() - t_start >= opts.seconds
            last = world.any(step >= opts.steps or out_of_time or stop.requested)
            if done is None:
                log(f"step {step}: non-finite loss, batch skipped")
            elif step % opts.log_every == 0:
                result, aux_loss = done
                rate = run_log.steps_per_s(step)
                row = {k: float(v.detach()) for k, v in result.items()}
                row.update(step=step, aux=float(aux_loss.detach()), lr=lr, steps_per_s=rate,
                           seconds=round(time.time() - t_start, 1))
                log(
                    f"step {step}: loss {row['loss']:.3f} bpp {row['bpp']:.3f} "
                    f"psnr {row['psnr']:.2f} aux {row['aux']:.1f} ({rate:.2f} steps/s)"
                )
                if world.is_main:
                    run_log.append("log.jsonl", row)
            if world.is_main and eval_images and (step % opts.eval_every == 0 or last):
                rows = evaluate(model, eval_images, device)
                run_log.evaluation(step, rows, lambda r: f"L{r['level']:.1f}", log)
            if step % opts.checkpoint_every == 0 or last:
                _checkpoint(ckpt_path, model, optimizer, aux_optimizer, step, sampler,
                            level_rng, opts, relevels, world)
    finally:
        stop.restore()
        close_world(world)
    if stop.requested:
        log(f"stopped at step {step} on request; checkpoint saved")
    return out


def _checkpoint(path: Path, model, optimizer, aux_optimizer, step: int, sampler, level_rng,
                opts: TrainOptions, relevels: list, world: World) -> None:
    """Rank 0 writes the run's state; every rank's random streams and a digest of every
    rank's weights go with it (the replicas must be identical, or the run stops)."""
    streams = random_states(sampler, {"level_rng": level_rng})
    per_rank = world.gather((streams, distributed.weights_digest(model)))
    digests = [d for _, d in per_rank]
    if len(set(digests)) > 1:
        raise RuntimeError(f"data-parallel replicas differ at step {step}: {digests}")
    if not world.is_main:
        return
    save_checkpoint(path, {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "aux_optimizer": aux_optimizer.state_dict(),
        "step": step,
        **streams,
        "rank_random_states": [s for s, _ in per_rank],
        "replica_digests": digests,
        "options": asdict(opts),
        "relevels": relevels,
    })


class _StopRequest:
    """SIGTERM/SIGINT end training after the current step, with a checkpoint (so a
    background run can be stopped cleanly at any time); a second signal stops at once."""

    def __init__(self):
        self.requested = False
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


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

    for index, (name, _) in enumerate(_main_parameters(new_model(old_config))):
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
    model = new_model(config)
    model.load_state_dict(state["model"])
    info = {"training": {"steps": state["step"], "options": state["options"],
                         "relevels": state.get("relevels", [])}}
    info.update(card or {})
    return save_model(model, Path(directory), name, info)
