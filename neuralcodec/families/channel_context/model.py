"""The channel-context model: the hyperprior's transforms, gains and entropy models, with
per-group context networks in place of its single checkerboard context.

The transforms (``g_a``, ``g_s``, ``h_a``, ``h_s``), the gain banks and the entropy
models are exactly the hyperprior's (same shapes, same state-dict names), so a
``hyperprior-checkerboard`` model's weights load into them for a warm start. Per channel
group ``k`` (sizes ``config.groups``, channels in order):

* ``channel_context[k]`` (k ≥ 1): 3x3 conv → LeakyReLU → 3x3 conv, on the decoded
  (LRP-corrected) latents of groups 0..k-1;
* ``spatial_context[k]``: a 5x5 conv on the group's decoded anchors (seen only by the
  non-anchors; anchors get zeros, as in the hyperprior);
* ``group_parameters[k]``: 1x1 convs with LeakyReLU on [hyper, channel ctx, spatial
  ctx] → (scales, means) of the group;
* ``lrp[k]``: 1x1 conv → LeakyReLU → 3x3 conv on [means, channel ctx, ŷ_k], clamped to
  ±½ (a clamp, not tanh: exact in integers), added to ŷ_k.

The spatial context and parameter networks default to the hyperprior's widths (``M``
spatial features, hidden 320 and 256), so that a warm start can give each group the
hyperprior's own context and parameter weights restricted to the group's channels
(``training.channel_context.inherit_hyperprior_context``): its anchors then start with
exactly the hyperprior's parameters, its non-anchors with the hyperprior's context from
the group's own anchors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..hyperprior.model import HyperpriorCheckerboard, ModelConfig, checkerboard_anchor_mask
from ..layers import conv, ste_round

LRP_BOUND = 0.5  # |correction| <= 1/2 quantization step


@dataclass(frozen=True)
class ChannelConfig(ModelConfig):
    """The hyperprior's config plus the channel groups and the context networks' widths."""

    groups: tuple[int, ...] = (16, 16, 32, 64, 64)
    # Hidden width of group k's channel context (k >= 1), one per group after the first.
    channel_hidden: tuple[int, ...] = (64, 64, 64, 64)
    parameter_hidden: tuple[int, int] = (320, 256)
    lrp_hidden: int = 32
    spatial_width: int | None = None  # spatial context features per group (None: M)

    def __post_init__(self) -> None:
        super().__post_init__()
        if sum(self.groups) != self.M or min(self.groups) < 1:
            raise ValueError(f"channel groups {self.groups} must split M={self.M} channels")
        if len(self.channel_hidden) != len(self.groups) - 1:
            raise ValueError("channel_hidden needs one width per group after the first")

    def to_dict(self) -> dict:
        d = super().to_dict()
        for key in ("groups", "channel_hidden", "parameter_hidden"):
            d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ChannelConfig:
        """From a card's config; a hyperprior config (no groups) gets the defaults."""
        base = ModelConfig.from_dict(d)
        extra = {}
        for key in ("groups", "channel_hidden", "parameter_hidden"):
            if key in d:
                extra[key] = tuple(int(v) for v in d[key])
        for key in ("lrp_hidden", "spatial_width"):
            if d.get(key) is not None:
                extra[key] = int(d[key])
        if "groups" not in d and base.M != sum(cls.groups):
            # Defaults for another M: the fixed small groups, the rest in the last one.
            extra["groups"] = (16, 16, 32, 64, base.M - 128)
        return cls(N=base.N, M=base.M, lambdas=base.lambdas, **extra)

    @property
    def spatial_features(self) -> int:
        return self.spatial_width or self.M

    @property
    def offsets(self) -> tuple[int, ...]:
        """First channel of each group, and M."""
        out = [0]
        for g in self.groups:
            out.append(out[-1] + g)
        return tuple(out)


def _leaky_stack(widths: list[int], kernels: list[int]) -> nn.Sequential:
    """Stride-1 convs through ``widths`` with LeakyReLU between them."""
    layers: list[nn.Module] = []
    for i, k in enumerate(kernels):
        if i:
            layers.append(nn.LeakyReLU(inplace=True))
        layers.append(conv(widths[i], widths[i + 1], k, 1))
    return nn.Sequential(*layers)


class ChannelCheckerboard(HyperpriorCheckerboard):
    """Uneven channel groups, a checkerboard within each, and latent residual prediction,
    on the hyperprior's transforms and continuous rate control (gain vectors)."""

    # The sub-networks of the exact integer parameter path (all that decide a table
    # index, a mean or a later context), by state-dict prefix.
    PARAM_PATH = ("h_s", "channel_context", "spatial_context", "group_parameters", "lrp")

    def __init__(self, config: ChannelConfig | None = None,
                 entropy_models: tuple[nn.Module, nn.Module] | None = None):
        config = config or ChannelConfig()
        super().__init__(config, entropy_models)
        # The hyperprior's own context and entropy-parameter networks are not used.
        del self.context, self.entropy_parameters
        hyper = config.M  # h_s's output channels
        e1, e2 = config.parameter_hidden
        self.channel_context = nn.ModuleDict()
        self.spatial_context = nn.ModuleList()
        self.group_parameters = nn.ModuleList()
        self.lrp = nn.ModuleList()
        for k, g in enumerate(config.groups):
            prior = config.offsets[k]
            cc = 0
            if k:
                cc = 2 * g
                self.channel_context[str(k)] = _leaky_stack(
                    [prior, config.channel_hidden[k - 1], cc], [3, 3])
            sc = config.spatial_features
            self.spatial_context.append(conv(g, sc, 5, 1))
            self.group_parameters.append(_leaky_stack([hyper + cc + sc, e1, e2, 2 * g],
                                                      [1, 1, 1]))
            lrp = _leaky_stack([2 * g + cc, config.lrp_hidden, g], [1, 3])
            with torch.no_grad():  # starts as no correction (a warm start keeps ŷ)
                lrp[-1].weight.zero_()
                lrp[-1].bias.zero_()
            self.lrp.append(lrp)

    # -- the pieces of one group, shared by training and the float reference ----------

    def channel_features(self, k: int, y_hat_before: Tensor | None) -> Tensor | None:
        """Group k's channel context from the decoded groups before it (None for k=0)."""
        return None if k == 0 else self.channel_context[str(k)](y_hat_before)

    def group_params(self, k: int, hyper: Tensor, cc: Tensor | None, sc: Tensor | None
                     ) -> tuple[Tensor, Tensor]:
        """(scales, means) of group k; ``sc`` None: the anchors' (zero) spatial context."""
        if sc is None:
            sc = hyper.new_zeros(hyper.shape[0], self.config.spatial_features,
                                 *hyper.shape[2:])
        parts = [hyper, sc] if cc is None else [hyper, cc, sc]
        scales, means = self.group_parameters[k](torch.cat(parts, 1)).chunk(2, 1)
        return scales, means

    def residual(self, k: int, means: Tensor, cc: Tensor | None, y_hat: Tensor) -> Tensor:
        """Latent residual prediction: the bounded correction added to group k's ŷ."""
        parts = [means, y_hat] if cc is None else [means, cc, y_hat]
        return self.lrp[k](torch.cat(parts, 1)).clamp(-LRP_BOUND, LRP_BOUND)

    def decode_groups(self, y: Tensor, hyper: Tensor, quantize: Callable[[Tensor], Tensor]
                      ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The groups in turn, as the decoder runs them, with ``quantize`` standing in
        for rounding (training: straight-through; effort: SGA): (ŷ, ŷ after LRP, scales,
        means), each shaped as ``y``."""
        anchor = checkerboard_anchor_mask(y.shape[2], y.shape[3], y.device)
        offsets = self.config.offsets
        y_hats, decoded, all_scales, all_means = [], [], [], []
        for k in range(len(self.config.groups)):
            y_k = y[:, offsets[k]:offsets[k + 1]]
            cc = self.channel_features(k, torch.cat(decoded, 1) if k else None)
            scales_a, means_a = self.group_params(k, hyper, cc, None)
            y_hat_a = (quantize(y_k - means_a) + means_a) * anchor
            scales_n, means_n = self.group_params(k, hyper, cc, self.spatial_context[k](y_hat_a))
            scales = torch.where(anchor, scales_a, scales_n)
            means = torch.where(anchor, means_a, means_n)
            y_hat_k = quantize(y_k - means) + means
            decoded.append(y_hat_k + self.residual(k, means, cc, y_hat_k))
            y_hats.append(y_hat_k)
            all_scales.append(scales)
            all_means.append(means)
        return (torch.cat(y_hats, 1), torch.cat(decoded, 1), torch.cat(all_scales, 1),
                torch.cat(all_means, 1))

    def gaussian_params(self, hyper: Tensor, ctx: Tensor | None):
        raise TypeError("a channel-context model predicts parameters per group: group_params")

    # -- training ------------------------------------------------------------------

    def forward(self, x: Tensor, level: Tensor, synthesize: bool = True) -> dict:
        """Training/evaluation pass with noise (training) or rounding (eval) proxies;
        ``synthesize`` False leaves out ``g_s`` (``x_hat`` None): the rate alone."""
        y = self.analysis(x, level)
        hyper, z_likelihoods = self.hyperprior(y, level)

        _, decoded, scales, means = self.decode_groups(y, hyper, ste_round)
        _, y_likelihoods = self.gaussian_conditional(y, scales, means=means)
        x_hat = self.synthesis(decoded, level) if synthesize else None
        return {"x_hat": x_hat, "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}
