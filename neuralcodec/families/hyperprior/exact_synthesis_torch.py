"""The exact synthesis (:mod:`.exact_synthesis`) in torch, on any device: the same
integers, step for step, so both backends give identical pixels.

Tensors are float64 holding integers below 2**53 (the bounds are the NumPy module's,
checked when the parameters were made), so each convolution is exact whatever algorithm
or summation order the device uses, provided it multiplies and adds: cuDNN is switched
off around the convolutions (some of its algorithms, FFT and Winograd, transform the
operands and would round; oneDNN, the CPU's, has no float64 convolutions). CUDA's
float64 products and sums are IEEE operations like the CPU's; its sqrt only seeds the
integer square root.

Without cuDNN, torch's transposed convolution builds a float64 column buffer of
``k*k*Cout`` numbers per input pixel (about 6.7 GB for the largest layer of a 1024 × 1024
tile), so this twin is for tests and checks for now; a decoder on CUDA would run it in
strips of rows.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..base import RatePoint
from .exact_synthesis import (
    ACT_LIMIT,
    FRAC_BITS,
    GAIN_BITS,
    INPUT_LIMIT,
    LATENT_FRAC_BITS,
    LATENT_LIMIT,
    ROOT_FRAC_BITS,
    SQUARE_FRAC_BITS,
    ExactDeconv,
    ExactSynthesisParams,
)


def _rescale(acc: Tensor, scale: Tensor | float, limit: float) -> Tensor:
    """floor(acc * scale) clamped to ±limit, in place (scale: powers of two)."""
    return acc.mul_(scale).floor_().clamp_(-limit, limit)


def integer_sqrt(n: Tensor) -> Tensor:
    """floor(sqrt(n)) of non-negative integers below 2**50 (see the NumPy twin)."""
    s = n.sqrt().floor_()
    s -= (s * s > n).to(s.dtype)
    t = s + 1
    s += (t * t <= n).to(s.dtype)
    return s


class TorchExactSynthesis:
    """The exact ``g_s`` in torch on ``device``: latents (h, w, M) in, uint8 pixels
    (H, W, 3) out, both NumPy arrays."""

    def __init__(self, params: ExactSynthesisParams, device: str | torch.device = "cpu"):
        self.params = params
        self.device = torch.device(device)

        def tensor(a: np.ndarray, *shape: int) -> Tensor:
            t = torch.as_tensor(np.asarray(a, dtype=np.float64), device=self.device)
            return t.view(*shape) if shape else t

        self._layers: list[tuple] = []
        for layer in params.layers:
            if isinstance(layer, ExactDeconv):
                self._layers.append((tensor(layer.weight), tensor(layer.bias),
                                     tensor(layer.scale, 1, -1, 1, 1), layer.spec))
            else:
                c = layer.beta.shape[0]
                self._layers.append((tensor(layer.gamma, c, c, 1, 1), tensor(layer.beta),
                                     tensor(layer.norm_scale, 1, -1, 1, 1)))

    @torch.no_grad()
    def __call__(self, y_hat: np.ndarray, point: RatePoint) -> np.ndarray:
        y = torch.as_tensor(np.asarray(y_hat, dtype=np.float64), device=self.device)
        a = self.gained_input(y.permute(2, 0, 1)[None], point)
        limit = ACT_LIMIT * 2**FRAC_BITS
        with torch.backends.cudnn.flags(enabled=False):
            for i in range(0, len(self._layers) - 1, 2):
                weight, bias, scale, spec = self._layers[i]
                gamma, beta, norm_scale = self._layers[i + 1]
                x = _rescale(self._deconv(a, weight, bias, spec), scale, limit)
                square = (x * x).mul_(2.0 ** (SQUARE_FRAC_BITS - 2 * FRAC_BITS)).round_()
                norm = F.conv2d(square, gamma, beta).mul_(norm_scale).floor_()
                a = x.mul_(integer_sqrt(norm)).mul_(2.0**-ROOT_FRAC_BITS).round_()
                a.clamp_(-limit, limit)
            weight, bias, scale, spec = self._layers[-1]
            x = _rescale(self._deconv(a, weight, bias, spec), scale, limit)
        pixels = x.mul_(255).add_(2.0 ** (FRAC_BITS - 1)).mul_(2.0**-FRAC_BITS).floor_()
        pixels = pixels.clamp_(0, 255).to(torch.uint8)[0].permute(1, 2, 0)
        return pixels.cpu().numpy()

    def gained_input(self, y: Tensor, point: RatePoint) -> Tensor:
        """``ŷ`` (1, M, h, w) times the level's gains on the activation grid."""
        gains = torch.tensor(self.params.input_gains(point), device=self.device)
        y = (y * 2**LATENT_FRAC_BITS).round_().clamp_(-LATENT_LIMIT, LATENT_LIMIT)
        y.mul_(gains.view(1, -1, 1, 1))
        shift = LATENT_FRAC_BITS + GAIN_BITS - FRAC_BITS
        return _rescale(y.add_(2.0 ** (shift - 1)), 2.0**-shift, INPUT_LIMIT * 2**FRAC_BITS)

    @staticmethod
    def _deconv(a: Tensor, weight: Tensor, bias: Tensor, spec) -> Tensor:
        return F.conv_transpose2d(a, weight, bias, stride=spec.stride, padding=spec.padding,
                                  output_padding=spec.output_padding)
