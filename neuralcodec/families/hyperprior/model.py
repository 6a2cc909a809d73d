"""The learned transform: a mean-scale hyperprior with a checkerboard context.

Analysis ``g_a`` maps an image to latents ``y``; the hyper-analysis ``h_a`` summarises
``y`` as ``z`` (coded with a factorized entropy bottleneck); ``h_s`` and the
checkerboard context give each latent a Gaussian mean and scale; synthesis ``g_s``
maps quantized latents back to pixels.

One network covers the whole rate range: a continuous *rate level* ``l`` in
``[0, levels - 1]`` selects per-channel gain vectors (Cui et al. 2021, "Asymmetric gained
deep image compression"), interpolated geometrically between the trained levels, which
scale the latents before quantization and back after it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..layers import build, ste_round, torch_layer
from . import architecture
from .architecture import ModelConfig
from .coding_tables import TABLE_BUFFERS, CodingTables
from .entropy_models import StoredFactorized, StoredGaussian, coding_tables


def checkerboard_anchor_mask(height: int, width: int, device=None) -> Tensor:
    """Boolean (1, 1, H, W) mask of the anchor positions, decoded first ((i + j) even)."""
    i = torch.arange(height, device=device).view(-1, 1)
    j = torch.arange(width, device=device).view(1, -1)
    return ((i + j) % 2 == 0).view(1, 1, height, width)


class GainBank(nn.Module):
    """Per-level positive channel gains, interpolated geometrically for fractional levels."""

    def __init__(self, levels: int, channels: int, init_log: Tensor | None = None):
        super().__init__()
        init = torch.zeros(levels, channels)
        if init_log is not None:
            init += init_log.view(-1, 1)
        self.log_gain = nn.Parameter(init)

    def forward(self, level: Tensor) -> Tensor:
        """``level``: (B,) floats in [0, levels-1] -> gains (B, C, 1, 1)."""
        levels = self.log_gain.shape[0]
        level = level.clamp(0, levels - 1).to(self.log_gain.dtype)
        lo = level.floor().long().clamp(max=levels - 2)
        frac = (level - lo.to(level.dtype)).view(-1, 1)
        log_gain = (1 - frac) * self.log_gain[lo] + frac * self.log_gain[lo + 1]
        return log_gain.exp()[:, :, None, None]


# The Gaussian tables' scales (CompressAI's default): 64 log-spaced from 0.11 to 256.
SCALE_TABLE = (0.11, 256.0, 64)


def scale_table() -> Tensor:
    low, high, count = SCALE_TABLE
    return torch.exp(torch.linspace(math.log(low), math.log(high), count))


class HyperpriorCheckerboard(nn.Module):
    """Mean-scale hyperprior (Minnen et al. 2018) with a two-pass checkerboard context
    (He et al. 2021) and continuous rate control by gain vectors.

    ``entropy_models`` are the (factorized, conditional) entropy models of ``z`` and
    ``y``: CompressAI's trainable ones for training (see
    :func:`neuralcodec.training.hyperprior.new_model`), by default the stored coding
    tables alone, which is all the coding path needs.
    """

    def __init__(self, config: ModelConfig | None = None,
                 entropy_models: tuple[nn.Module, nn.Module] | None = None):
        super().__init__()
        self.config = config or ModelConfig()
        N, M, levels = self.config.N, self.config.M, self.config.levels

        self.g_a = build(architecture.analysis(N, M))
        self.g_s = build(architecture.synthesis(N, M))
        self.h_a = build(architecture.hyper_analysis(N, M))
        self.h_s = build(architecture.hyper_synthesis(N, M))
        # Sees only anchor latents, so a plain convolution is causal for the second pass.
        self.context = torch_layer(architecture.context(M))
        self.entropy_parameters = build(architecture.entropy_parameters(M))
        self.entropy_bottleneck, self.gaussian_conditional = (
            entropy_models or (StoredFactorized(N), StoredGaussian()))

        # Start the gains near the high-rate optimum (quantizer step ~ lambda^-1/2) so
        # the levels separate from the first step instead of having to discover it.
        lam = torch.tensor(self.config.lambdas)
        init = 0.5 * torch.log(lam)
        init = init - init.mean()
        self.gain_y = GainBank(levels, M, init)
        self.gain_y_inv = GainBank(levels, M, -init)
        self.gain_z = GainBank(levels, N)
        self.gain_z_inv = GainBank(levels, N)
        # Training only: run g_a and g_s (all but their last layer) under autocast to this
        # dtype (e.g. torch.bfloat16). Their last layers, the hyperprior, the context and
        # the entropy models stay float32: latents, means and pixels need the precision.
        self.transform_autocast: torch.dtype | None = None

    def _transform(self, layers: nn.Sequential, x: Tensor,
                   autocast: torch.dtype | None = None) -> Tensor:
        autocast = autocast or self.transform_autocast
        if autocast is None:
            return layers(x)
        with torch.autocast(x.device.type, dtype=autocast):
            h = layers[:-1](x)
        with torch.autocast(x.device.type, enabled=False):
            return layers[-1](h.float())

    # -- pieces shared by training and the coding path ------------------------------

    def analysis(self, x: Tensor, level: Tensor) -> Tensor:
        return self._transform(self.g_a, x) * self.gain_y(level)

    def hyper_analysis(self, y: Tensor, level: Tensor) -> Tensor:
        return self.h_a(y) * self.gain_z(level)

    def hyper_synthesis(self, z_hat: Tensor, level: Tensor) -> Tensor:
        return self.h_s(z_hat * self.gain_z_inv(level))

    def gaussian_params(self, hyper: Tensor, ctx: Tensor | None) -> tuple[Tensor, Tensor]:
        """(scales, means) from hyper features and context features (None = anchors)."""
        if ctx is None:
            ctx = torch.zeros_like(hyper)
        scales, means = self.entropy_parameters(torch.cat([hyper, ctx], dim=1)).chunk(2, 1)
        return scales, means

    def synthesis(self, y_hat: Tensor, level: Tensor, autocast: torch.dtype | None = None,
                  g_s: nn.Sequential | None = None) -> Tensor:
        """x̂ from ŷ; ``autocast`` (e.g. torch.bfloat16) runs g_s's body in that dtype
        (encoder effort's objective; the decoder itself always runs float32); ``g_s``
        stands in for the model's own (a copy with its weights already cast)."""
        layers = self.g_s if g_s is None else g_s
        return self._transform(layers, y_hat * self.gain_y_inv(level), autocast)

    # -- training ------------------------------------------------------------------

    def hyperprior(self, y: Tensor, level: Tensor) -> tuple[Tensor, Tensor]:
        """Training: the hyper features of ``y`` (z rounded around its medians, straight
        through) and z's likelihoods."""
        z = self.hyper_analysis(y, level)
        _, z_likelihoods = self.entropy_bottleneck(z)
        z_med = self.entropy_bottleneck._get_medians()
        z_hat = ste_round(z - z_med) + z_med
        return self.hyper_synthesis(z_hat, level), z_likelihoods

    def forward(self, x: Tensor, level: Tensor) -> dict:
        """Training/evaluation pass with noise (training) or rounding (eval) proxies."""
        y = self.analysis(x, level)
        hyper, z_likelihoods = self.hyperprior(y, level)

        anchor = checkerboard_anchor_mask(y.shape[2], y.shape[3], y.device)
        scales_a, means_a = self.gaussian_params(hyper, None)
        y_hat_a = (ste_round(y - means_a) + means_a) * anchor
        scales_n, means_n = self.gaussian_params(hyper, self.context(y_hat_a))
        scales = torch.where(anchor, scales_a, scales_n)
        means = torch.where(anchor, means_a, means_n)

        _, y_likelihoods = self.gaussian_conditional(y, scales, means=means)
        y_hat = ste_round(y - means) + means
        x_hat = self.synthesis(y_hat, level)
        return {"x_hat": x_hat, "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}

    def lambda_at(self, level: Tensor) -> Tensor:
        """Rate-distortion trade-off for (fractional) levels: log-linear interpolation."""
        log_lam = torch.log(torch.tensor(self.config.lambdas, device=level.device))
        levels = len(self.config.lambdas)
        level = level.clamp(0, levels - 1)
        lo = level.floor().long().clamp(max=levels - 2)
        frac = level - lo.to(level.dtype)
        return torch.exp((1 - frac) * log_lam[lo] + frac * log_lam[lo + 1])

    # -- entropy models (training time) ----------------------------------------------

    def aux_loss(self) -> Tensor:
        """The factorized model's quantile loss (its own optimizer)."""
        return self.entropy_bottleneck.loss()

    def update_tables(self) -> None:
        """Rebuild the integer coding tables from the trainable entropy models."""
        self.entropy_bottleneck.update(force=True)
        self.gaussian_conditional.update_scale_table(scale_table(), force=True)

    def coding_tables(self) -> CodingTables:
        return coding_tables(self.entropy_bottleneck, self.gaussian_conditional)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """As nn.Module's, after resizing the table buffers to the stored tables' sizes
        (they depend on the trained distributions)."""
        for name in ("entropy_bottleneck", "gaussian_conditional"):
            module = getattr(self, name)
            for buffer in TABLE_BUFFERS:
                stored = state_dict.get(f"{name}.{buffer}")
                current = getattr(module, buffer, None)
                if stored is not None and current is not None and current.shape != stored.shape:
                    current.resize_(stored.shape)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)
