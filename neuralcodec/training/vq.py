"""Training the VQ-VAE family, warm-started from a hyperprior model's transforms.

The analysis transform stays frozen (its latents define the space that is quantized);
the codebooks, the index prior, the synthesis transform and its output scales are
trained. Each sample keeps a random number of units (quantizer dropout), so one model
covers every operating point. Loss: lambda * 255^2 * MSE + bpp + codebook loss; the bpp
term (-log2 p(index) under the context prior) trains the prior, and it reaches the
codebooks through the entropy-constrained assignment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..families.vq import DOWNSAMPLING
from ..families.vq.model import (
    VQAutoencoder,
    VQConfig,
    from_hyperprior,
    permute_channels,
    to_groups,
)
from ..metrics import psnr
from .data import pad
from .loop import CHECKPOINT, RunSetup, run
from .options import VQTrainOptions

USAGE_DECAY = 0.99
DEAD_USAGE = 0.03  # a code used less than this fraction of a uniform share is re-seeded


def greedy_unit_order(config: VQConfig, gain: Tensor, bits: Tensor) -> tuple[int, ...]:
    """Coding order: repeatedly the next stage of the group whose next unit removes the
    most latent error per bit (``gain``, ``bits``: (stages, groups)); a group's stage 0
    only after the previous group's (its context parent)."""
    next_stage = [0] * config.groups
    order = []
    while len(order) < config.units:
        best, best_value = None, -float("inf")
        for g in range(config.groups):
            s = next_stage[g]
            if s == config.stages or (s == 0 and g > 0 and next_stage[g - 1] == 0):
                continue
            value = float(gain[s, g]) / max(float(bits[s, g]), 1e-3)
            if value > best_value:
                best, best_value = (s, g), value
        s, g = best
        order.append(s * config.groups + g)
        next_stage[g] += 1
    return tuple(order)


@torch.no_grad()
def initialise(model: VQAutoencoder, z: Tensor, iters: int, log=print) -> VQConfig:
    """Sort channels by energy, k-means every stage (groups batched) on the residual it
    sees, start the prior at the code frequencies and order the units greedily by error
    removed per bit. Returns the config with that order."""
    order = torch.argsort(z.pow(2).mean((0, 2, 3)), descending=True)
    permute_channels(model, order)
    c = model.config
    G, K = c.groups, c.codebook_size
    r = to_groups(z[:, order], G)
    gen = torch.Generator().manual_seed(0)
    offsets = (torch.arange(G) * K).view(-1, 1)
    gain, bits = torch.zeros(c.stages, G), torch.zeros(c.stages, G)
    for stage in range(c.stages):
        pick = torch.randperm(r.shape[1], generator=gen)[:K]
        model.vq.codebooks[stage] = r[:, pick].clone()
        for it in range(iters + 1):
            idx = model.vq.assign(r, stage, slice(0, G), None)
            counts = torch.bincount((idx + offsets).flatten(), minlength=G * K).view(G, K)
            if it == iters:
                break
            sums = torch.zeros(G * K, c.group_dim).index_add_(
                0, (idx + offsets).flatten(), r.reshape(-1, c.group_dim))
            used = counts > 0
            book = model.vq.codebooks[stage]
            book[used] = sums.view(G, K, -1)[used] / counts[used].unsqueeze(-1).float()
        freq = counts.float() / counts.sum(1, keepdim=True)
        bits[stage] = -(freq * torch.log2(freq.clamp_min(1e-12))).sum(1)
        model.usage[stage] = freq * K
        for g in range(G):
            model.prior.logits[stage * G + g] = torch.log(counts[g].float() + 1)
        before = r.pow(2).sum(-1).mean(1)
        r = r - model.vq.lookup(stage, slice(0, G), idx)
        gain[stage] = before - r.pow(2).sum(-1).mean(1)
    model.prior.refresh_context_bins(model.vq.codebooks, model.usage)
    config = replace(c, unit_order=greedy_unit_order(c, gain, bits))
    model.config = config
    log(f"k-means init: latent MSE per element after all units {r.pow(2).mean():.4f} "
        f"(energy {z.pow(2).mean():.4f}); unit order {list(config.order)}")
    return config


@torch.no_grad()
def reseed_dead_codes(model: VQAutoencoder, z: Tensor, gen: torch.Generator) -> int:
    """Move rarely used codes onto random current residuals and give them an average
    prior probability so the entropy-constrained search can pick them again."""
    c = model.config
    q = model.quantize(z)
    r = to_groups(z, c.groups) - torch.cumsum(q.codewords, 0) + q.codewords
    count = 0
    for stage, group in np.ndindex(c.stages, c.groups):
        which = torch.nonzero(model.usage[stage, group] < DEAD_USAGE).flatten()
        if not len(which):
            continue
        vectors = r[stage, group]
        pick = torch.randint(vectors.shape[0], (len(which),), generator=gen)
        noise = 0.01 * torch.randn(len(which), vectors.shape[1], generator=gen)
        model.vq.codebooks[stage, group, which] = vectors[pick] + noise
        logits = model.prior.logits[stage * c.groups + group]
        logits[:, which] = logits.mean(1, keepdim=True)
        model.usage[stage, group, which] = 1.0
        count += len(which)
    return count


@torch.no_grad()
def evaluate(model: VQAutoencoder, images: list[Tensor], units: list[int]) -> list[dict]:
    """Likelihood-based RD per unit count (rounded pixels, no entropy coder)."""
    model.eval()
    rows = []
    for n in units:
        points = []
        for img in images:
            _, h, w = img.shape
            x = pad(img.float().unsqueeze(0) / 255.0, DOWNSAMPLING)
            out = model(x, torch.tensor([n]))
            x_hat = torch.round(out["x_hat"][0, :, :h, :w].clamp(0, 1) * 255)
            points.append((float(out["bits"].sum()) / (h * w), psnr(img.numpy(), x_hat.numpy())))
        rate, quality = np.mean(points, axis=0)
        rows.append({"units": n, "bpp": float(rate), "psnr": float(quality)})
    model.train()
    return rows


def _optimizer(model: VQAutoencoder, opts: VQTrainOptions) -> torch.optim.Adam:
    synthesis = list(model.g_s.parameters()) + [model.log_scale_out]
    return torch.optim.Adam([
        {"params": synthesis, "lr": opts.lr, "base_lr": opts.lr},
        {"params": [model.vq.codebooks], "lr": opts.codebook_lr, "base_lr": opts.codebook_lr},
        {"params": [model.prior.logits], "lr": opts.prior_lr, "base_lr": opts.prior_lr},
    ])


class VQTrainer:
    """The VQ-VAE's part of a run (see :class:`.loop.Trainer`)."""

    def __init__(self, opts: VQTrainOptions):
        self.opts = opts
        self.unit_rng = torch.Generator().manual_seed(opts.seed + 1)
        self.generators = {"unit_rng": self.unit_rng}

    def start(self, state: dict | None, resumed: bool, setup: RunSetup, world,
              log: Callable[[str], None]) -> int:
        from ..families.hyperprior.weights import read_model  # the warm start's family
        from ..families.zoo import find_model

        opts = self.opts
        step = 0
        if state is not None:
            opts.config = state["options"]["config"]  # holds the unit order chosen at init
            model = VQAutoencoder(VQConfig.from_dict(opts.config))
            model.load_state_dict(state["model"])
            self.optimizer = _optimizer(model, opts)
            self.optimizer.load_state_dict(state["optimizer"])
            step = state["step"]
        else:
            hp, _, _ = read_model(find_model(opts.init))
            model = from_hyperprior(hp, VQConfig.from_dict(opts.config), opts.warm_start_level)
            del hp
            with torch.no_grad():
                z = torch.cat([model.analysis(setup.sampler.batch(16))
                               for _ in range(max(1, opts.init_crops // 16))])
            opts.config = initialise(model, z, opts.kmeans_iters, log).to_dict()
            self.optimizer = _optimizer(model, opts)
        self.config = config = VQConfig.from_dict(opts.config)
        top = config.top_units
        self.eval_units = sorted({max(1, top // 7), top // 3, (2 * top) // 3, top})
        if setup.eval_images and step == 0:
            log(f"eval at init: {evaluate(model, setup.eval_images, self.eval_units)}")
        model.to(setup.device).train()
        for p in model.g_a.parameters():
            p.requires_grad_(False)
        model.log_scale_in.requires_grad_(False)
        self.model, self.device = model, setup.device
        return step

    def train_step(self, x: Tensor, step: int, elapsed: float, steps_here: int
                   ) -> dict[str, float]:
        opts, config, model = self.opts, self.config, self.model
        drop = 0.1 if step >= opts.lr_drop_at * opts.steps else 1.0
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * drop
        units = torch.randint(config.min_units, config.top_units + 1, (x.shape[0],),
                              generator=self.unit_rng)
        with torch.no_grad():
            self.z = z = model.analysis(x)
        result = model(x, units.to(self.device), z=z)
        mse = (result["x_hat"] - x).pow(2).mean()
        bpp = result["bits"].sum() / (x.shape[0] * x.shape[2] * x.shape[3])
        loss = opts.lmbda * 255**2 * mse + bpp + opts.codebook_weight * result["codebook_loss"]
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.g_s.parameters(), 1.0)
        self.optimizer.step()
        with torch.no_grad():
            idx = result["quantized"].indices.reshape(config.units, -1)
            k = config.codebook_size
            offsets = torch.arange(config.units).view(-1, 1) * k
            counts = torch.bincount((idx + offsets).flatten(), minlength=config.units * k)
            share = counts.view(config.units, k).float() / idx.shape[1] * k
            model.usage.view(config.units, k).mul_(USAGE_DECAY).add_((1 - USAGE_DECAY) * share)
        return {"loss": float(loss.detach()), "bpp": float(bpp.detach()),
                "psnr": float(-10 * torch.log10(mse.detach())),
                "codebook": float(result["codebook_loss"].detach()),
                "units": float(units.float().mean())}

    def after_step(self, step: int, log: Callable[[str], None]) -> None:
        if step % self.opts.reseed_every == 0:
            n = reseed_dead_codes(self.model, self.z, self.unit_rng)
            if n:
                log(f"step {step}: re-seeded {n} dead codes")
        if step % self.opts.context_every == 0:
            self.model.prior.refresh_context_bins(self.model.vq.codebooks.detach(),
                                                  self.model.usage)

    def log_line(self, row: dict[str, float]) -> str:
        return (f"loss {row['loss']:.3f} bpp {row['bpp']:.3f} psnr {row['psnr']:.2f} "
                f"cb {row['codebook']:.4f}")

    def evaluate(self, images: list[Tensor]) -> list[dict]:
        return evaluate(self.model, images, self.eval_units)

    def eval_label(self, row: dict) -> str:
        return f"n{row['units']}"

    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}


def train(opts: VQTrainOptions, log: Callable[[str], None] = print) -> Path:
    """Train a VQ-VAE (resuming from ``opts.out``/checkpoint.pt if present); returns the
    run folder."""
    return run(opts, VQTrainer(opts), log)


def export(run_dir: str | Path, name: str, directory: str | Path, card: dict | None = None,
           **quality_range: int) -> Path:
    """Turn a run's checkpoint into shippable weights (safetensors + JSON card);
    ``min_units``/``max_units`` may set the quality range of the exported model."""
    from ..families.vq.coder import save_model

    state = torch.load(Path(run_dir) / CHECKPOINT, map_location="cpu", weights_only=True)
    config = replace(VQConfig.from_dict(state["options"]["config"]), **quality_range)
    model = VQAutoencoder(config)
    model.load_state_dict(state["model"])
    info = {"training": {"steps": state["step"], "options": state["options"]}}
    info.update(card or {})
    return save_model(model, Path(directory), name, info)
