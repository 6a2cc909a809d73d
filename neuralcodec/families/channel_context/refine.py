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
        y_hat, decoded, scales, means = self.model.decode_groups(y, self.hyper, quantize)
        bits = gaussian_bits(y_hat, means, scales)
        x_hat = self.model.synthesis(decoded.contiguous(memory_format=torch.channels_last),
                                     self.level, self.autocast, self.g_s)
        height, width = self.size
        return rd_cost(self.lam, self.x, x_hat[:, :, :height, :width], bits, height * width)
