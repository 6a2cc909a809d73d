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

import torch
from torch import Tensor, nn

from ..hyperprior.model import HyperpriorCheckerboard, checkerboard_anchor_mask
from ..layers import build, ste_round, torch_layer
from . import architecture
from .architecture import LRP_BOUND, ChannelConfig

__all__ = ["LRP_BOUND", "ChannelCheckerboard", "ChannelConfig"]

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
        self.channel_context = nn.ModuleDict()
        self.spatial_context = nn.ModuleList()
        self.group_parameters = nn.ModuleList()
        self.lrp = nn.ModuleList()
        for k in range(len(config.groups)):
            if k:
                self.channel_context[str(k)] = build(architecture.channel_context(config, k))
            self.spatial_context.append(torch_layer(architecture.spatial_context(config, k)))
            self.group_parameters.append(build(architecture.group_parameters(config, k)))
            lrp = build(architecture.lrp(config, k))
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
