"""Layers shared by the model families, in plain torch.

``GDN`` is generalized divisive normalization (Ballé, Laparra & Simoncelli 2016) with
CompressAI's parametrization and state-dict names (``beta``, ``gamma``, their
``*_reparam`` buffers), so weights trained with CompressAI's layer load unchanged, and
the coding path never imports CompressAI (whose package ``__init__`` alone costs ~2 s).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import specs


def torch_layer(spec: specs.Layer) -> nn.Module:
    """The torch module of a layer description (see :mod:`.specs`)."""
    if isinstance(spec, specs.Conv):
        if spec.transposed:
            return nn.ConvTranspose2d(spec.cin, spec.cout, spec.k, stride=spec.stride,
                                      padding=spec.padding,
                                      output_padding=spec.output_padding)
        return nn.Conv2d(spec.cin, spec.cout, spec.k, stride=spec.stride, padding=spec.padding)
    if isinstance(spec, specs.GDN):
        return GDN(spec.channels, inverse=spec.inverse)
    return nn.LeakyReLU(inplace=True)


def build(network: tuple[specs.Layer, ...]) -> nn.Sequential:
    """The torch modules of a network description, in order."""
    return nn.Sequential(*(torch_layer(spec) for spec in network))


def conv(cin: int, cout: int, k: int = 5, stride: int = 2) -> nn.Conv2d:
    return torch_layer(specs.Conv(cin, cout, k, stride))


def deconv(cin: int, cout: int, k: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    return torch_layer(specs.deconv(cin, cout, k, stride))


def ste_round(x: Tensor) -> Tensor:
    """Round in the forward pass, identity gradient in the backward pass."""
    return x + (torch.round(x) - x).detach()


class _LowerBoundFunction(torch.autograd.Function):
    """max(x, bound), whose gradient passes where x is above the bound or where the
    step would move x up towards it (so a parameter stuck at the bound can leave it)."""

    @staticmethod
    def forward(ctx, x: Tensor, bound: Tensor) -> Tensor:
        ctx.save_for_backward(x, bound)
        return torch.max(x, bound)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        x, bound = ctx.saved_tensors
        return ((x >= bound) | (grad_output < 0)) * grad_output, None


class LowerBound(nn.Module):
    bound: Tensor

    def __init__(self, bound: float):
        super().__init__()
        self.register_buffer("bound", torch.tensor([float(bound)]))

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return _LowerBoundFunction.apply(x, self.bound)
        return torch.max(x, self.bound)


class NonNegative(nn.Module):
    """Parameters kept non-negative as ``max(p, bound)**2 - pedestal``; stable near 0."""

    pedestal: Tensor

    def __init__(self, minimum: float = 0.0, offset: float = 2**-18):
        super().__init__()
        self.register_buffer("pedestal", torch.tensor([offset**2]))
        self.lower_bound = LowerBound((minimum + offset**2) ** 0.5)

    def init(self, x: Tensor) -> Tensor:
        return torch.sqrt(torch.max(x + self.pedestal, self.pedestal))

    def forward(self, x: Tensor) -> Tensor:
        return self.lower_bound(x) ** 2 - self.pedestal


# Positions normalised per block by the inference path of GDN: a block's squares and
# norms stay in the CPU's cache (measured fastest of 512..8192 on a 2-core EPYC).
GDN_BLOCK = 2048


class GDN(nn.Module):
    """``y = x / sqrt(beta + gamma · x²)`` per position (``inverse``: ``x * sqrt(...)``).

    Without autograd (coding) it runs as a matrix product over blocks of positions,
    fusing the square, the 1x1 "convolution", the root and the product per block: about
    half the time of the convolution form on a channels-last tensor.
    """

    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6,
                 gamma_init: float = 0.1):
        super().__init__()
        self.inverse = inverse
        self.beta_reparam = NonNegative(minimum=beta_min)
        self.beta = nn.Parameter(self.beta_reparam.init(torch.ones(channels)))
        self.gamma_reparam = NonNegative()
        self.gamma = nn.Parameter(self.gamma_reparam.init(gamma_init * torch.eye(channels)))

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        beta = self.beta_reparam(self.beta)
        gamma = self.gamma_reparam(self.gamma)
        grad = torch.is_grad_enabled()
        if x.dtype == torch.float32 and not (grad and self.beta.requires_grad):
            if grad and x.requires_grad:  # the input's gradient only (encoder refinement)
                return _BlockwiseGDN.apply(x, beta.detach(), gamma.detach(), self.inverse)
            return _gdn_blockwise(x, beta, gamma, self.inverse)
        norm = F.conv2d(x * x, gamma.reshape(c, c, 1, 1), beta)
        return x * (torch.sqrt(norm) if self.inverse else torch.rsqrt(norm))


def _rows(x: Tensor) -> Tensor:
    """(N, C, H, W) -> (N*H*W, C): a view if ``x`` is channels-last."""
    return x.permute(0, 2, 3, 1).contiguous().view(-1, x.shape[1])


def _from_rows(rows: Tensor, like: Tensor) -> Tensor:
    n, c, h, w = like.shape
    return rows.view(n, h, w, c).permute(0, 3, 1, 2)


def _gdn_blockwise(x: Tensor, beta: Tensor, gamma: Tensor, inverse: bool) -> Tensor:
    c = x.shape[1]
    rows = _rows(x)
    out = torch.empty_like(rows)
    weight = gamma.t().contiguous()
    block = min(GDN_BLOCK, rows.shape[0])
    square, norm = rows.new_empty(block, c), rows.new_empty(block, c)
    for start in range(0, rows.shape[0], block):
        part = rows[start:start + block]
        k = part.shape[0]
        torch.mul(part, part, out=square[:k])
        torch.addmm(beta, square[:k], weight, out=norm[:k])
        scale = norm[:k].sqrt_() if inverse else norm[:k].rsqrt_()
        torch.mul(part, scale, out=out[start:start + k])
    return _from_rows(out, x)


class _BlockwiseGDN(torch.autograd.Function):
    """GDN with a gradient for its input only (fixed ``beta``, ``gamma``), block by block.

    Per position, with ``n = beta + gamma · x²`` and ``g`` the output's gradient:
    inverse (``x·√n``): ``g·√n + x · ((g·x/√n) @ gamma)``;
    forward (``x/√n``): ``g/√n - x · ((g·x·n^-3/2) @ gamma)``. ``n`` is recomputed in the
    backward pass rather than stored (one matrix product instead of a tensor per layer).
    """

    @staticmethod
    def forward(ctx, x: Tensor, beta: Tensor, gamma: Tensor, inverse: bool) -> Tensor:
        ctx.save_for_backward(x, beta, gamma)
        ctx.inverse = inverse
        return _gdn_blockwise(x, beta, gamma, inverse)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, beta, gamma = ctx.saved_tensors
        c = x.shape[1]
        rows, grad_rows = _rows(x), _rows(grad.contiguous(memory_format=torch.channels_last))
        out = torch.empty_like(rows)
        weight_t = gamma.t().contiguous()
        block = min(GDN_BLOCK, rows.shape[0])
        norm, u = rows.new_empty(block, c), rows.new_empty(block, c)
        for start in range(0, rows.shape[0], block):
            part, g = rows[start:start + block], grad_rows[start:start + block]
            k = part.shape[0]
            torch.addmm(beta, part * part, weight_t, out=norm[:k])
            if ctx.inverse:
                root = norm[:k].sqrt_()
                torch.mul(g, part, out=u[:k]).div_(root)
                direct = g * root
                sign = 1.0
            else:
                inv_root = norm[:k].rsqrt_()
                torch.mul(g, part, out=u[:k]).mul_(inv_root.pow(3))
                direct = g * inv_root
                sign = -1.0
            cross = u[:k] @ gamma
            torch.addcmul(direct, part, cross, value=sign, out=out[start:start + k])
        return _from_rows(out, x), None, None, None
