"""The encoder's fit: latents and networks of one image by gradient descent, then the
search of each parameter group's quantization step. Torch, CPU or CUDA.

Schedule (docs/overfitted.md): soft-rounding with noise, temperature and noise annealed
linearly, Adam with a cosine learning rate; then a short phase on the hard-rounded
latents that tunes only the networks (Cool-chic 5's intra preset).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .architecture import DEFAULT, OverfitArchitecture
from .arm_int import MAX_STEP_BITS as ARM_MAX_STEP_BITS
from .arm_int import arm_tables, integer_arm
from .model import OverfitModel, kumaraswamy_noise, softround
from .parameters import best_bucket, dequantize, quantize

# Candidate steps 2**-bits of each parameter group (the ARM's within its exact bounds).
STEP_BITS = {"arm.weight": range(0, 13), "arm.bias": range(0, ARM_MAX_STEP_BITS + 1, 2),
             "upsampling": range(0, 13), "synthesis.weight": range(0, 13),
             "synthesis.bias": range(0, 17, 2)}


@dataclass(frozen=True)
class FitOptions:
    lmbda: float  # loss = MSE (RGB in [0, 1]) + lmbda * bits per pixel
    iterations: int
    lr: float = 1e-2
    final_fraction: float = 0.05  # last iterations on hard-rounded latents
    final_lr: float = 1e-4
    # "hard": the final phase tunes the networks only (Cool-chic 5); "ste": the latents
    # too, rounded forward and soft-rounded (last temperature) backward.
    final_mode: str = "hard"
    temperature: tuple[float, float] = (0.35, 0.08)
    noise: tuple[float, float] = (0.22, 0.15)  # Gaussian sigma, or Kumaraswamy a
    noise_kind: str = "gaussian"  # or "kumaraswamy" (C3)
    seed: int = 0
    bf16: bool = False  # the synthesis under bf16 autocast
    compile: bool = False  # torch.compile the synthesis


Progress = Callable[[int, int, dict], None]


def image_tensor(image: np.ndarray, device: str = "cpu") -> torch.Tensor:
    """(1, 3, H, W) float32 in [0, 1] from uint8 (H, W, 3)."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div(
        255).unsqueeze(0).to(device)


def _noisy(y: torch.Tensor, t: float, level: float, kind: str) -> torch.Tensor:
    if kind == "gaussian":
        noise = torch.randn_like(y) * level
    elif kind == "kumaraswamy":
        noise = kumaraswamy_noise(y, level)
    else:
        raise ValueError(f"unknown noise {kind!r}")
    return softround(softround(y, t) + noise, t)


def _rounded(model: OverfitModel) -> list[torch.Tensor]:
    return [torch.round(g).detach() for g in model.latents]


def _real(x: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """The top-left ``size`` (height, width) pixels of (1, C, H, W): a padded image's
    real ones (None: all)."""
    return x if size is None else x[..., :size[0], :size[1]]


def fit(image: np.ndarray, options: FitOptions, arch: OverfitArchitecture = DEFAULT,
        device: str = "cpu", progress: Progress | None = None,
        progress_every: int = 50, size: tuple[int, int] | None = None) -> OverfitModel:
    """Fit the model of one RGB uint8 image (sides multiples of ``arch.pad_multiple``);
    with ``size``, only its top-left (height, width) pixels count in the distortion
    (the rest is padding) and the rate is per real pixel."""
    torch.manual_seed(options.seed)
    target = _real(image_tensor(image, device), size)
    height, width = image.shape[:2]
    pixels = target.shape[-2] * target.shape[-1]
    model = OverfitModel(arch, height, width).to(device)
    synthesize = torch.compile(model.synthesize) if options.compile else model.synthesize
    autocast = device.split(":")[0]
    final = max(1, round(options.iterations * options.final_fraction))
    main = options.iterations - final
    optimizer = torch.optim.Adam(model.parameters(), lr=options.lr)
    start = time.perf_counter()
    for it in range(options.iterations):
        if it == main:  # the last phase: real latents
            optimizer = torch.optim.Adam(
                model.network_parameters() if options.final_mode == "hard"
                else model.parameters(), lr=options.final_lr)
        if it < main:
            frac = it / max(1, main - 1)
            t = options.temperature[0] + frac * (options.temperature[1] - options.temperature[0])
            level = options.noise[0] + frac * (options.noise[1] - options.noise[0])
            grids = [_noisy(g, t, level, options.noise_kind) for g in model.latents]
            lr = options.lr * 0.5 * (1 + math.cos(math.pi * it / main))
        elif options.final_mode == "ste":
            t = options.temperature[1]
            grids = [softround(g, t) + (torch.round(g) - softround(g, t)).detach()
                     for g in model.latents]
            lr = options.final_lr * 0.5 * (1 + math.cos(math.pi * (it - main) / final))
        else:
            grids = _rounded(model)
            lr = options.final_lr * 0.5 * (1 + math.cos(math.pi * (it - main) / final))
        for group in optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast(autocast, dtype=torch.bfloat16, enabled=options.bf16):
            decoded = synthesize(grids)
        mse = torch.mean((_real(decoded.float(), size) - target) ** 2)
        bits = model.rate_bits(grids)
        loss = mse + options.lmbda * bits / pixels
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if progress and (it % progress_every == 0 or it == options.iterations - 1):
            progress(it + 1, options.iterations, {
                "loss": loss.item(), "bpp": bits.item() / pixels,
                "psnr": -10 * math.log10(max(mse.item(), 1e-12)),
                "seconds": time.perf_counter() - start})
    return model


@torch.no_grad()
def evaluate(model: OverfitModel, target: torch.Tensor) -> tuple[float, float]:
    """(MSE, estimated latent bits) with the rounded latents, float32; ``target`` may be
    the top-left part of the fitted image (its real pixels)."""
    grids = _rounded(model)
    decoded = model.synthesize(grids).clamp(0, 1)[..., :target.shape[-2], :target.shape[-1]]
    mse = torch.mean((decoded - target) ** 2).item()
    return mse, model.rate_bits(grids).item()


@torch.no_grad()
def quantize_networks(model: OverfitModel, image: np.ndarray, lmbda: float,
                      size: tuple[int, int] | None = None) -> dict[str, int]:
    """Choose each group's step (greedily, in order) by MSE + lmbda * (latent + parameter
    bits) / pixels; leaves the model's parameters at their quantized values. ``size``:
    as :func:`fit`'s."""
    target = _real(image_tensor(image, next(model.parameters()).device.type), size)
    pixels = target.shape[-2] * target.shape[-1]
    chosen: dict[str, int] = {}
    for group, params in model.parameter_groups().items():
        originals = [p.detach().clone() for _, p in params]
        best = None
        for bits in STEP_BITS[group]:
            param_bits = 0.0
            for (_, p), orig in zip(params, originals, strict=True):
                q = quantize(orig.cpu().numpy(), bits)
                p.copy_(torch.from_numpy(dequantize(q, bits)).to(p))
                param_bits += best_bucket(q)[1]
            mse, latent_bits = evaluate(model, target)
            cost = mse + lmbda * (latent_bits + param_bits) / pixels
            if best is None or cost < best[0]:
                best = (cost, bits)
        chosen[group] = best[1]
        for (_, p), orig in zip(params, originals, strict=True):
            q = quantize(orig.cpu().numpy(), best[1])
            p.copy_(torch.from_numpy(dequantize(q, best[1])).to(p))
    return chosen


def quantized_parameters(model: OverfitModel, steps: dict[str, int]
                         ) -> dict[str, tuple[np.ndarray, int]]:
    """Every network parameter as (integers, step bits), after :func:`quantize_networks`."""
    out = {}
    for group, params in model.parameter_groups().items():
        for name, p in params:
            out[name] = (quantize(p.detach().cpu().numpy(), steps[group]), steps[group])
    return out


def integer_latents(model: OverfitModel) -> list[np.ndarray]:
    return [torch.round(g.detach()).cpu().numpy()[0, 0].astype(np.int64)
            for g in model.latents]


@torch.no_grad()
def torch_table_indices(model: OverfitModel, parameters: dict[str, tuple[np.ndarray, int]]
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Table index and base of every latent by the exact ARM in torch (float64, on the
    model's device), in :func:`.latent_codec.table_indices`'s order."""
    device = next(model.parameters()).device
    context = model.contexts([torch.round(g).double() for g in model.latents])
    arm = integer_arm(parameters, model.arch.arm_hidden)
    return arm_tables(context, arm, as_array=lambda a: torch.from_numpy(a).to(device))
