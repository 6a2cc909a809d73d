"""The training loop every model family shares: device and data-parallel ranks, training
crops, resume, the step/log/evaluation/checkpoint cadence, runs of fixed wall time and
clean stops. What a step does is the family's (:class:`Trainer`): see
:mod:`.hyperprior` and :mod:`.vq`.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import torch

from . import distributed
from .data import CropSampler, list_images, load_rgb
from .distributed import World, close_world, init_world
from .options import RunOptions

# A local training state, never shipped: weights go out as safetensors.
CHECKPOINT = "checkpoint.pt"


class Trainer(Protocol):
    """One model family's part of a run.

    ``start`` builds the model and its optimizers (from ``state``, a checkpoint or a
    warm start, or afresh) and returns the step to start from; ``train_step`` takes one
    optimisation step on a batch and returns the figures to log (None: the batch was
    skipped); ``state`` is what a checkpoint keeps besides the step, the random streams
    and the options."""

    model: torch.nn.Module
    generators: dict[str, torch.Generator]  # random streams beyond the sampler's

    def start(self, state: dict | None, resumed: bool, setup: RunSetup, world: World,
              log: Callable[[str], None]) -> int: ...

    def train_step(self, x: torch.Tensor, step: int, elapsed: float, steps_here: int
                   ) -> dict[str, float] | None: ...

    def after_step(self, step: int, log: Callable[[str], None]) -> None: ...

    def log_line(self, row: dict[str, float]) -> str: ...

    def evaluate(self, images: list[torch.Tensor]) -> list[dict]: ...

    def eval_label(self, row: dict) -> str: ...

    def state(self) -> dict[str, Any]: ...


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA device is available")
    return torch.device(name)


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


def start_run(opts: RunOptions, log) -> RunSetup:
    """Threads, device, seed, output folder, training crops and eval images of a run."""
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


def run(opts: RunOptions, trainer: Trainer, log: Callable[[str], None] = print) -> Path:
    """Train (resuming from ``opts.out``/checkpoint.pt if present); returns the run folder.

    Under torchrun each process is one rank of a data-parallel run (see
    :mod:`.distributed`; for options whose ``data_parallel`` says so);
    ``opts.batch_size`` is per process.
    """
    t_start = time.time()
    world = init_world(pick_device(opts.device))
    if world.distributed:
        if not opts.data_parallel:
            raise ValueError("this model family does not train under torchrun")
        log = log if world.is_main else (lambda msg: None)
        opts = replace(opts, seed=opts.seed + 1000 * world.rank,
                       device=str(world.device(pick_device(opts.device))))
    setup = start_run(opts, log)
    resumed = setup.checkpoint.exists()
    state = (torch.load(setup.checkpoint, map_location=setup.device, weights_only=True)
             if resumed else None)
    step = trainer.start(state, resumed, setup, world, log)
    if resumed:
        _restore_streams(state, setup.sampler, trainer.generators, world, log)
        log(f"resumed from {setup.checkpoint} at step {step}")
    seconds = getattr(opts, "seconds", None)
    run_log = RunLog(setup.out, step)
    stop = _StopRequest()
    first_step = step
    last = step >= opts.steps
    try:
        while not last:
            x = setup.sampler.batch(opts.batch_size).to(setup.device)
            row = trainer.train_step(x, step, time.time() - t_start, step - first_step)
            step += 1
            out_of_time = seconds is not None and time.time() - t_start >= seconds
            last = world.any(step >= opts.steps or out_of_time or stop.requested)
            trainer.after_step(step, log)
            if row is None:
                log(f"step {step}: non-finite loss, batch skipped")
            elif step % opts.log_every == 0:
                row.update(step=step, steps_per_s=run_log.steps_per_s(step),
                           seconds=round(time.time() - t_start, 1))
                log(f"step {step}: {trainer.log_line(row)} ({row['steps_per_s']:.2f} steps/s)")
                if world.is_main:
                    run_log.append("log.jsonl", row)
            if world.is_main and setup.eval_images and (step % opts.eval_every == 0 or last):
                rows = trainer.evaluate(setup.eval_images)
                run_log.evaluation(step, rows, trainer.eval_label, log)
            if step % opts.checkpoint_every == 0 or last:
                _checkpoint(setup.checkpoint, trainer, step, setup.sampler, opts, world)
    finally:
        stop.restore()
        close_world(world)
    if stop.requested:
        log(f"stopped at step {step} on request; checkpoint saved")
    return setup.out


def _checkpoint(path: Path, trainer: Trainer, step: int, sampler: CropSampler, opts: RunOptions,
                world: World) -> None:
    """Rank 0 writes the run's state; every rank's random streams and a digest of every
    rank's weights go with it (the replicas must be identical, or the run stops)."""
    streams = random_states(sampler, trainer.generators)
    per_rank = world.gather((streams, distributed.weights_digest(trainer.model)))
    digests = [d for _, d in per_rank]
    if len(set(digests)) > 1:
        raise RuntimeError(f"data-parallel replicas differ at step {step}: {digests}")
    if not world.is_main:
        return
    save_checkpoint(path, {
        **trainer.state(),
        "step": step,
        **streams,
        "rank_random_states": [s for s, _ in per_rank],
        "replica_digests": digests,
        "options": asdict(opts),
    })


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
