"""Encoder effort for the channel-context family: the hyperprior's per-image refinement
(SGA on ``y`` with the hyper features fixed, :mod:`..hyperprior.refine`), with this
family's rate: each group's parameters from the hyper features, the groups decoded
before it and its own anchors, and the LRP-corrected latents feeding the next group and
``g_s``::

    for each group k:   μ_k, σ_k  = group_parameters_k(hyper, cc(ŷ_<k), sc(anchors of ŷ_k))
                        ŷ_k       = SGA-round(y_k − μ_k) + μ_k
                        ŷ_k      += lrp_k(μ_k, cc, ŷ_k)
    loss = λ · 255² · MSE(x, g_s(ŷ)) + Σ_k bits(ŷ_k | μ_k, σ_k) / pixels
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..hyperprior.refine import Refiner, gaussian_bits, rd_cost
from .model import ChannelCheckerboard


class ChannelRefiner(Refiner):
    """The objective of one image at one rate level, with the hyper features fixed."""

    model: ChannelCheckerboard

    def loss(self, y: Tensor, quantize) -> Tensor:
        model, anchor, offsets = self.model, self.anchor, self.model.config.offsets
        decoded: list[Tensor] = []
        bits = y.new_zeros(())
        for k in range(len(model.config.groups)):
            y_k = y[:, offsets[k]:offsets[k + 1]]
            cc = model.channel_features(k, torch.cat(decoded, 1) if k else None)
            scales_a, means_a = model.group_params(k, self.hyper, cc, None)
            anchors = (quantize(y_k - means_a) + means_a) * anchor
            scales_n, means_n = model.group_params(k, self.hyper, cc,
                                                   model.spatial_context[k](anchors))
            means = torch.where(anchor, means_a, means_n)
            scales = torch.where(anchor, scales_a, scales_n)
            y_hat = quantize(y_k - means) + means
            bits = bits + gaussian_bits(y_hat, means, scales)
            decoded.append(y_hat + model.residual(k, means, cc, y_hat))
        y_hat = torch.cat(decoded, 1).contiguous(memory_format=torch.channels_last)
        x_hat = model.synthesis(y_hat, self.level)
        height, width = self.size
        return rd_cost(self.lam, self.x, x_hat[:, :, :height, :width], bits, height * width)
