"""The hyperprior family's training: its model, loss, schedule and step.

Each step samples a continuous rate level per image, so the whole quality range is
trained at once; the loss is lambda(level) * 255^2 * MSE + bpp. A second optimizer fits
the factorized model's quantiles (CompressAI's auxiliary loss). Training is where
CompressAI comes in: its ``EntropyBottleneck`` (``z``) and ``GaussianConditional``
(``y``) give the likelihoods of the rate term; after training their integer tables are
built and shipped (:func:`neuralcodec.families.hyperprior.weights.save_model`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..families.bf16 import native_bf16
from ..families.hyperprior import PAD_MULTIPLE
from ..families.hyperprior.model import HyperpriorCheckerboard, ModelConfig
from ..families.hyperprior.weights import save_model
from . import distributed
from .data import pad
from .distributed import World
from .loop import CHECKPOINT, RunSetup, run, save_checkpoint
from .options import TrainOptions


def new_model(config: ModelConfig | None = None) -> HyperpriorCheckerboard:
    """A hyperprior model with trainable entropy models."""
    with warnings.catch_warnings():
        # compressai 1.2.8 calls the deprecated torch.jit.script at import time.
        warnings.simplefilter("ignore", FutureWarning)
        from compressai.entropy_models import EntropyBottleneck, GaussianConditional
    config = config or ModelConfig()
    return HyperpriorCheckerboard(config, (EntropyBottleneck(config.N), GaussianConditional(None)))


def rd_loss(model: HyperpriorCheckerboard, x: Tensor, level: Tensor, forward=None,
            rate_only: bool = False) -> dict:
    """Per-sample lambda * 255^2 * MSE + bpp, averaged over the batch; ``forward`` is the
    module to run (a compiled or data-parallel wrapper of ``model``; default ``model``).
    ``rate_only``: the bpp alone, without running the synthesis (a model whose forward
    takes ``synthesize``), for steps in which nothing trainable changes the distortion."""
    out = (forward or model)(x, level, **({"synthesize": False} if rate_only else {}))
    num_pixels = x.shape[2] * x.shape[3]
    bpp = sum(
        (-torch.log2(lik.clamp_min(1e-9))).flatten(1).sum(1) for lik in out["likelihoods"].values()
    ) / num_pixels
    if rate_only:
        return {"loss": bpp.mean(), "bpp": bpp.mean()}
    mse = (out["x_hat"] - x).pow(2).flatten(1).mean(1)
    lam = model.lambda_at(level)
    loss = (lam * 255**2 * mse + bpp).mean()
    psnr = -10 * torch.log10(mse.clamp_min(1e-10))
    return {"loss": loss, "bpp": bpp.mean(), "mse": mse.mean(), "psnr": psnr.mean()}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


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
def evaluate(model: HyperpriorCheckerboard, images: list[torch.Tensor], device,
             levels: tuple[float, ...] | None = None) -> list[dict]:
    """Likelihood-based RD (rounding, no entropy coder) at ``levels`` (default: the
    lowest, middle and top level)."""
    model.eval()
    autocast, model.transform_autocast = model.transform_autocast, None  # as coding runs
    rows = []
    top = model.config.levels - 1
    for level in levels or (0.0, top / 2, float(top)):
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


def resolve_precision(precision: str, device: torch.device) -> str:
    """``precision`` with "auto" resolved: bf16 where native (about 1.8x the steps per
    hour of fp32 on a 2-core AMX CPU, benchmarks/results/train-speed-amx.json), else fp32."""
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision must be auto, fp32 or bf16, got {precision!r}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def _configure_speed(model: HyperpriorCheckerboard, opts: TrainOptions, device,
                     world: World, log) -> Callable:
    """Apply the speed options; returns the module the training steps call."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    model.transform_autocast = torch.bfloat16 if opts.precision == "bf16" else None
    if opts.precision == "bf16" and not native_bf16(device):
        # Without native bf16 (AVX-512 BF16 or AMX) torch runs bf16 convolutions on slow
        # reference kernels (see benchmarks/results/train-speed.json, an AVX2-only EPYC).
        log(f"note: this {device.type} has no native bf16 convolutions; "
            "--precision bf16 will be much slower than fp32")
    if opts.channels_last:
        model.to(memory_format=torch.channels_last)
    forward = distributed.wrap(model, world)
    return torch.compile(forward) if opts.compile else forward


def _backward_step(forward, model, x, level, optimizer, aux_optimizer, clip: float,
                   world: World, rate_only: bool = False):
    """One optimisation step; returns (rd terms, aux loss), or None if the loss was not
    finite on any rank (the batch is skipped everywhere)."""
    result = rd_loss(model, x, level, forward, rate_only)
    optimizer.zero_grad(set_to_none=True)
    if world.any(not torch.isfinite(result["loss"]).item()):
        return None
    result["loss"].backward()
    # Clip the main loss's gradients only: the quantiles still hold the previous step's
    # auxiliary gradient (large), which would shrink every step but a process's first.
    torch.nn.utils.clip_grad_norm_(
        [p for group in optimizer.param_groups for p in group["params"]], clip)
    optimizer.step()
    aux_loss = model.aux_loss()
    aux_optimizer.zero_grad(set_to_none=True)
    aux_loss.backward()
    world.average_gradients(aux_optimizer.param_groups[0]["params"])
    aux_optimizer.step()
    return result, aux_loss


class HyperpriorTrainer:
    """The hyperprior's part of a run (see :class:`.loop.Trainer`)."""

    def __init__(self, opts: TrainOptions):
        self.opts = opts
        self.level_rng = torch.Generator().manual_seed(opts.seed + 1)
        self.generators = {"level_rng": self.level_rng}
        self.relevels: list = []

    def start(self, state: dict | None, resumed: bool, setup: RunSetup, world: World,
              log: Callable[[str], None]) -> int:
        opts, device = self.opts, setup.device
        if resumed and opts.relevel and relevel_state(state, opts.config["lambdas"]):
            log(f"moved {setup.checkpoint}'s rate levels to lambdas {opts.config['lambdas']}")
        if state is None and opts.init:
            log(f"starting from the weights of {opts.init}")
            state = self.initial_state(opts)
        if state is not None:
            # A run keeps its own architecture and rate levels, whatever today's defaults.
            opts.config = state["options"]["config"]
            self.relevels = state.get("relevels", [])
        self.config = self.config_of(opts.config)
        self.model = model = self.new_model(self.config).to(device)
        opts.precision = resolve_precision(opts.precision, device)
        if state is not None:
            model.load_state_dict(state["model"])
        self.optimizer, self.aux_optimizer = _optimizers(model, opts,
                                                         fused=device.type == "cuda")
        if resumed:
            self.optimizer.load_state_dict(state["optimizer"])
            self.aux_optimizer.load_state_dict(state["aux_optimizer"])
        log(f"model: {count_parameters(model) / 1e6:.2f} M parameters, device {device}, "
            f"{opts.precision}{', compiled' if opts.compile else ''}"
            f"{', channels_last' if opts.channels_last else ''}"
            f"{f', {world.size} processes' if world.distributed else ''}")
        self.device, self.world, self.log = device, world, log
        self.forward = _configure_speed(model, opts, device, world, log)
        self.compiled_ok = not opts.compile
        model.train()
        return state["step"] if state is not None else 0

    # -- what a family built on this one's transforms changes -------------------------

    def config_of(self, config: dict) -> ModelConfig:
        return ModelConfig.from_dict(config)

    def new_model(self, config: ModelConfig) -> HyperpriorCheckerboard:
        return new_model(config)

    def initial_state(self, opts: TrainOptions) -> dict:
        return initial_state(opts)

    def train_step(self, x: Tensor, step: int, elapsed: float, steps_here: int
                   ) -> dict[str, float] | None:
        opts = self.opts
        lr = _lr_at(step, opts, elapsed, steps_here)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if opts.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        level = (torch.rand(x.shape[0], generator=self.level_rng)
                 * (self.config.levels - 1)).to(self.device)
        args = (self.model, x, level, self.optimizer, self.aux_optimizer, opts.clip,
                self.world, self.rate_only())
        try:
            done = _backward_step(self.forward, *args)
            self.compiled_ok = True
        except Exception as exc:  # a compiler failure must not cost the run
            if self.compiled_ok:
                raise
            self.log(f"torch.compile failed ({type(exc).__name__}: {exc}); training eagerly")
            self.forward, self.compiled_ok = distributed.wrap(self.model, self.world), True
            done = _backward_step(self.forward, *args)
        if done is None:
            return None
        result, aux_loss = done
        row = {k: float(v.detach()) for k, v in result.items()}
        row.update(aux=float(aux_loss.detach()), lr=lr)
        return row

    def rate_only(self) -> bool:
        """Whether this step trains on the rate alone (see :func:`rd_loss`)."""
        return False

    def after_step(self, step: int, log: Callable[[str], None]) -> None:
        pass

    def log_line(self, row: dict[str, float]) -> str:
        psnr = f"psnr {row['psnr']:.2f}" if "psnr" in row else "rate only"
        return f"loss {row['loss']:.3f} bpp {row['bpp']:.3f} {psnr} aux {row['aux']:.1f}"

    def evaluate(self, images: list[Tensor]) -> list[dict]:
        return evaluate(self.model, images, self.device)

    def eval_label(self, row: dict) -> str:
        return f"L{row['level']:.1f}"

    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "aux_optimizer": self.aux_optimizer.state_dict(), "relevels": self.relevels}


def train(opts: TrainOptions, log: Callable[[str], None] = print) -> Path:
    """Train a hyperprior model (resuming from ``opts.out``/checkpoint.pt if present);
    returns the run folder."""
    return run(opts, HyperpriorTrainer(opts), log)


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
