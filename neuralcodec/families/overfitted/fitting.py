"""The encoder of one tile (torch): fit, quantize the networks, code. What
:class:`~.coder.OverfitCoder` runs; the probe (benchmarks/overfit_probe.py) runs the
same steps one by one to time and measure them."""

from __future__ import annotations

import numpy as np
import torch

from ..bf16 import native_bf16
from .architecture import DEFAULT
from .coding import CodedModel, encode_model
from .fit import FitOptions, fit, integer_latents, quantize_networks, quantized_parameters


def fit_and_code(image: np.ndarray, lmbda: float, iterations: int,
                 size: tuple[int, int] | None, device: str, seed: int,
                 progress=None) -> CodedModel:
    """The coded model of a padded uint8 (H, W, 3) image whose top-left ``size`` pixels
    are real (None: all); ``progress(iteration, iterations, seconds)`` as it fits."""
    options = FitOptions(lmbda=lmbda, iterations=iterations, seed=seed,
                         bf16=native_bf16(torch.device(device)))

    def report(it: int, total: int, info: dict) -> None:
        if progress is not None:
            progress(it, total, info["seconds"])

    model = fit(image, options, DEFAULT, device, report,
                progress_every=max(1, min(10, iterations // 100)), size=size)
    steps = quantize_networks(model, image, lmbda, size)
    return encode_model(DEFAULT, integer_latents(model), quantized_parameters(model, steps),
                        steps)
