"""Encoder effort: refine one image's latents against the real rate-distortion objective.

The analysis transform ``g_a`` is amortized: one pass that is good on average over the
training images, not the best latents for *this* image. Higher effort levels search for
better ones with the decoder fixed, so every file still decodes with the plain decoder at
the same speed (Yang, Bamler & Mandt 2020, "Improving Inference for Neural Image
Compression": stochastic Gumbel annealing, SGA)::

    x ──g_a──► y₀ ──h_a──► z ──round──► ẑ   (ẑ, and so the hyper features, stay fixed)
                │                         │ h_s
                ▼ start                   ▼
       y ──SGA-round(y − μ) + μ──► ŷ ──g_s──► x̂
                      ▲ μ, σ: hyper features + checkerboard context of ŷ's anchors

       loss = λ(level) · 255² · MSE(x, x̂) + bits(ŷ | μ, σ) / pixels   (Adam on y)

Adam's step decays along a half cosine to zero over the iterations: with a few dozen
steps a larger early step helps, and the small late steps settle the latents while the
rounding hardens.

Where the device computes bf16 natively (``..bf16``), the objective runs ``g_s``'s body
under bf16 autocast, with its convolutions' weights cast once per image rather than on
every step, so more iterations fit the same time (levels 2-4 were sized on an AMX CPU);
the file chosen at the end is still measured with the float32 decoder.

SGA replaces rounding by a stochastic choice between floor and ceiling whose sharpness
grows as the temperature anneals to zero, so the optimizer sees the rounding it will get.
The coder then codes ``round(y − μ)`` exactly as for an unrefined image (the integer
parameter path still decides every table) and keeps whichever file, refined or not, has
the lower real cost: refinement never makes a file worse by the measure it optimizes.
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np
import torch
from torch import Tensor

from ...allocator import retain_freed_memory
from ...stages import stage
from ..base import RatePoint, Refinement
from ..bf16 import native_bf16, with_cast_convolutions
from ..torch_arrays import to_tensor
from .latent_codec import LatentCodec, LatentStreams
from .model import HyperpriorCheckerboard, checkerboard_anchor_mask
from .torch_backend import TorchTransforms

LEARNING_RATE = 0.03  # Adam's first step, in quantization steps of y; cosine decay
START_TEMPERATURE = 0.5  # SGA's temperature, annealed linearly to ~0 over the iterations
SCALE_BOUND = 0.11  # the smallest scale in the Gaussian tables
LIKELIHOOD_BOUND = 1e-9


def rd_cost(lam: float, x: Tensor, x_hat: Tensor, bits: Tensor | float, pixels: int) -> Tensor:
    """λ · 255² · MSE + bits per pixel: the training objective at one rate level."""
    return lam * 255.0**2 * torch.mean((x_hat - x) ** 2) + bits / pixels


def gaussian_bits(y_hat: Tensor, means: Tensor, scales: Tensor) -> Tensor:
    """Bits of ``y_hat`` under unit-width bins of Gaussians (the tables' distribution)."""
    s = scales.clamp(min=SCALE_BOUND)
    v = (y_hat - means).abs()
    upper = torch.special.ndtr((0.5 - v) / s)
    lower = torch.special.ndtr((-0.5 - v) / s)
    return -torch.log2((upper - lower).clamp(min=LIKELIHOOD_BOUND)).sum()


def sga_round(v: Tensor, temperature: float, generator: torch.Generator) -> Tensor:
    """A sample between floor(v) and ceil(v): Gumbel-softmax over the two with logits
    -atanh(distance)/temperature (Yang et al. 2020, eq. 6); hard rounding as T -> 0."""
    down = torch.floor(v)
    r = (v - down).clamp(1e-5, 1 - 1e-5)
    logits = torch.stack([-torch.atanh(r), -torch.atanh(1 - r)]) / temperature
    uniform = torch.rand(logits.shape, generator=generator, device=v.device, dtype=v.dtype)
    gumbel = -torch.log(-torch.log(uniform.clamp(1e-10, 1.0)))
    weights = torch.softmax(logits + gumbel, dim=0)
    return down + weights[1]


class Refiner:
    """The objective of one image at one rate level, with the hyper features fixed."""

    def __init__(self, model: HyperpriorCheckerboard, x: Tensor, size: tuple[int, int],
                 hyper: Tensor, level: Tensor):
        self.model = model
        height, width = size
        self.x = x[:, :, :height, :width]
        self.size = size
        self.level = level
        self.lam = float(model.lambda_at(level))
        self.hyper = hyper
        self.anchor = checkerboard_anchor_mask(hyper.shape[2], hyper.shape[3], hyper.device)
        self.autocast = torch.bfloat16 if native_bf16(x.device) else None
        self.g_s = (model.g_s if self.autocast is None
                    else with_cast_convolutions(model.g_s, self.autocast))

    @cached_property
    def anchor_params(self) -> tuple[Tensor, Tensor]:
        """The anchors' (scales, means): the hyper features' alone, fixed."""
        with torch.no_grad():
            return self.model.gaussian_params(self.hyper, None)

    def loss(self, y: Tensor, quantize) -> Tensor:
        """The RD cost of ``y`` with ``quantize`` standing in for rounding (z's bits are
        fixed, so left out)."""
        model, anchor = self.model, self.anchor
        scales_a, means_a = self.anchor_params
        anchors = (quantize(y - means_a) + means_a) * anchor
        scales_n, means_n = model.gaussian_params(self.hyper, model.context(anchors))
        means = torch.where(anchor, means_a, means_n)
        scales = torch.where(anchor, scales_a, scales_n)
        y_hat = quantize(y - means) + means
        x_hat = model.synthesis(y_hat.contiguous(memory_format=torch.channels_last),
                                self.level, self.autocast, self.g_s)
        height, width = self.size
        bits = gaussian_bits(y_hat, means, scales)
        return rd_cost(self.lam, self.x, x_hat[:, :, :height, :width], bits, height * width)

    def refine(self, y: Tensor, iterations: int, seed: int = 0) -> Tensor:
        """``y`` after ``iterations`` steps of SGA (deterministic for a seed and device).

        Each step frees and allocates the same large activations: the process's allocator
        is told to keep freed memory for re-use (:mod:`neuralcodec.allocator`)."""
        retain_freed_memory()
        generator = torch.Generator(device=y.device).manual_seed(seed)
        y = y.detach().clone().requires_grad_(True)
        optimizer = torch.optim.Adam([y], lr=LEARNING_RATE)
        with torch.enable_grad():
            for step in range(iterations):
                progress = step / iterations
                temperature = max(START_TEMPERATURE * (1 - progress), 1e-3)
                for group in optimizer.param_groups:
                    group["lr"] = LEARNING_RATE * 0.5 * (1 + math.cos(math.pi * progress))
                loss = self.loss(y, lambda v, t=temperature: sga_round(v, t, generator))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        return y.detach()


@torch.no_grad()
def refined_streams(transforms: TorchTransforms, refiner: type[Refiner],
                    latent_codec: LatentCodec, y: Tensor, z_sym: np.ndarray,
                    point: RatePoint, refinement: Refinement, iterations: int
                    ) -> LatentStreams:
    """The streams of ``y`` refined for the image with a family's ``refiner`` (its
    objective), or of ``y`` itself when that file costs less (λ·D + R, measured on the
    real bytes and the decoded pixels of the float32 decoder)."""
    model = transforms.model
    level = point.level(model.config.levels)
    level_t = transforms.level_tensor(level)
    z_hat = to_tensor(z_sym + latent_codec.z_medians, y.device).to(y.dtype)
    hyper = model.hyper_synthesis(z_hat, level_t)
    objective = refiner(model, to_tensor(refinement.x, y.device), refinement.size, hyper,
                        level_t)
    with stage("refinement"):
        refined = objective.refine(y, iterations)
    best, best_cost = None, float("inf")
    height, width = refinement.size
    for candidate in (y, refined):
        streams, decoded = latent_codec.compress(transforms.as_array(candidate), point, z_sym)
        bits = 8 * (len(streams.z) + len(streams.y) + len(streams.escapes))
        x_hat = transforms.synthesis(decoded.y_hat, level)[:, :, :height, :width]
        x_hat = torch.round(x_hat.clamp(0, 1) * 255) / 255  # the decoded pixels
        cost = float(rd_cost(objective.lam, objective.x, x_hat, bits, height * width))
        if cost < best_cost:
            best, best_cost = streams, cost
    assert best is not None
    return best
