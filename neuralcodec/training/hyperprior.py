"""The hyperprior family's training step: its trainable model and its loss.

Training is where CompressAI comes in: its ``EntropyBottleneck`` (factorized model of
``z``, with a quantile auxiliary loss) and ``GaussianConditional`` (``y``) give the
likelihoods of the rate term; after training their integer tables are built and
shipped (:func:`neuralcodec.families.hyperprior.weights.save_model`).
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from ..families.hyperprior.model import HyperpriorCheckerboard, ModelConfig


def new_model(config: ModelConfig | None = None) -> HyperpriorCheckerboard:
    """A hyperprior model with trainable entropy models."""
    with warnings.catch_warnings():
        # compressai 1.2.8 calls the deprecated torch.jit.script at import time.
        warnings.simplefilter("ignore", FutureWarning)
        from compressai.entropy_models import EntropyBottleneck, GaussianConditional
    config = config or ModelConfig()
    return HyperpriorCheckerboard(config, (EntropyBottleneck(config.N), GaussianConditional(None)))


def rd_loss(model: HyperpriorCheckerboard, x: Tensor, level: Tensor, forward=None) -> dict:
    """Per-sample lambda * 255^2 * MSE + bpp, averaged over the batch; ``forward`` is the
    module to run (a compiled or data-parallel wrapper of ``model``; default ``model``)."""
    out = (forward or model)(x, level)
    num_pixels = x.shape[2] * x.shape[3]
    bpp = sum(
        (-torch.log2(lik.clamp_min(1e-9))).flatten(1).sum(1) for lik in out["likelihoods"].values()
    ) / num_pixels
    mse = (out["x_hat"] - x).pow(2).flatten(1).mean(1)
    lam = model.lambda_at(level)
    loss = (lam * 255**2 * mse + bpp).mean()
    psnr = -10 * torch.log10(mse.clamp_min(1e-10))
    return {"loss": loss, "bpp": bpp.mean(), "mse": mse.mean(), "psnr": psnr.mean()}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
