"""The overfitted decoder in torch, for the fit: latents, float ARM, upsampling,
synthesis, and the rate of the latents under the ARM (Laplace). Built from
:class:`~.architecture.OverfitArchitecture`."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .architecture import BICUBIC_HALF, OverfitArchitecture
from .laplace_tables import LOG_SCALE_MAX, LOG_SCALE_MIN

MIN_PROBABILITY = 2.0**-16  # no latent costs more than 16 bits (as the tables' floor)


def softround(x: Tensor, t: float) -> Tensor:
    """Agustsson & Theis's soft rounding: identity as t grows, round() as t -> 0."""
    floor = torch.floor(x)
    delta = x - floor - 0.5
    return floor + 0.5 * torch.tanh(delta / t) / math.tanh(1 / (2 * t)) + 0.5


def kumaraswamy_noise(shape_like: Tensor, a: float) -> Tensor:
    """Noise in (-1/2, 1/2) of mode 0 (C3): a = 1 is uniform, larger is more peaked."""
    b = (2**a * (a - 1) + 1) / a
    u = torch.rand_like(shape_like)
    return (1 - (1 - u) ** (1 / b)) ** (1 / a) - 0.5


def laplace_bits(y: Tensor, mu: Tensor, log_scale: Tensor) -> Tensor:
    """-log2 of the Laplace mass of [y - 1/2, y + 1/2], at least MIN_PROBABILITY."""
    scale = torch.exp(log_scale.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX))
    d = y - mu

    def cdf(x: Tensor) -> Tensor:
        return 0.5 - 0.5 * torch.sign(x) * torch.expm1(-x.abs() / scale)

    p = (cdf(d + 0.5) - cdf(d - 0.5)).clamp_min(MIN_PROBABILITY)
    return -torch.log2(p)


def upsample2(x: Tensor, half: Tensor) -> Tensor:
    """x2 separable upsampling of every channel with the symmetric kernel (half,
    mirrored), replicate borders. Output m of an axis sits at input m/2 - 1/4."""
    kernel = torch.cat([half, half.flip(0)])
    c = x.shape[1]
    taps = kernel.numel()
    pad = taps // 4  # input samples each side that reach the edge outputs
    x = F.pad(x, (pad, pad, 0, 0), mode="replicate")
    x = F.conv_transpose2d(x, kernel.view(1, 1, 1, taps).expand(c, 1, 1, taps), stride=(1, 2),
                           groups=c)
    x = x[..., taps - 1:x.shape[-1] - taps + 1]
    x = F.pad(x, (0, 0, pad, pad), mode="replicate")
    x = F.conv_transpose2d(x, kernel.view(1, 1, taps, 1).expand(c, 1, taps, 1), stride=(2, 1),
                           groups=c)
    return x[..., taps - 1:x.shape[-2] - taps + 1, :]


class OverfitModel(nn.Module):
    def __init__(self, arch: OverfitArchitecture, height: int, width: int):
        super().__init__()
        if height % arch.pad_multiple or width % arch.pad_multiple:
            raise ValueError(f"image size must be a multiple of {arch.pad_multiple}")
        self.arch = arch
        self.height, self.width = height, width
        self.latents = nn.ParameterList(
            [nn.Parameter(torch.zeros(1, 1, h, w)) for h, w in arch.grid_shapes(height, width)])
        c = arch.context_size
        self.arm = nn.ModuleList([nn.Linear(c, c) for _ in range(arch.arm_hidden)]
                                 + [nn.Linear(c, 2)])
        for layer in self.arm[:-1]:  # residual layers start as the identity
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        nn.init.normal_(self.arm[-1].weight, std=1.0 / c**2)
        nn.init.zeros_(self.arm[-1].bias)
        self.upsampling = nn.Parameter(
            torch.tensor(BICUBIC_HALF).repeat(arch.levels - 1, 1))  # row j: step to level j
        self.synthesis = nn.ModuleList(
            [nn.Conv2d(s.cin, s.cout, s.k) for s in arch.synthesis])
        for spec, conv in zip(arch.synthesis, self.synthesis, strict=True):
            if spec.residual:
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)
        ctx = torch.tensor(arch.context)
        self._top, self._left = int(-ctx[:, 0].min()), int(-ctx[:, 1].min())
        self._right = max(0, int(ctx[:, 1].max()))

    def parameter_groups(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        """The networks' parameters by quantization group (one step per group), in the
        architecture's coding order."""
        named = dict(self.named_parameters())
        groups: dict[str, list[tuple[str, nn.Parameter]]] = {}
        for name, (shape, group) in self.arch.parameter_layout().items():
            if tuple(named[name].shape) != shape:
                raise AssertionError(f"{name}: {tuple(named[name].shape)} != {shape}")
            groups.setdefault(group, []).append((name, named[name]))
        return groups

    def network_parameters(self) -> list[nn.Parameter]:
        return [p for ps in self.parameter_groups().values() for _, p in ps]

    def contexts(self, grids: list[Tensor]) -> Tensor:
        """(latents, context) rows, grids then raster order, zeros outside each grid."""
        rows = []
        t, left = self._top, self._left
        for g in grids:
            h, w = g.shape[-2:]
            p = F.pad(g, (left, self._right, t, 0))
            rows.append(torch.stack([p[0, 0, t + dr:t + dr + h, left + dc:left + dc + w]
                                     for dr, dc in self.arch.context], dim=-1).reshape(h * w, -1))
        return torch.cat(rows)

    def arm_forward(self, context: Tensor) -> tuple[Tensor, Tensor]:
        x = context
        for layer in self.arm[:-1]:
            x = F.relu(layer(x) + x)
        out = self.arm[-1](x)
        return out[:, 0], out[:, 1]

    def rate_bits(self, grids: list[Tensor]) -> Tensor:
        """Estimated bits of the quantized latents ``grids`` under the float ARM."""
        mu, log_scale = self.arm_forward(self.contexts(grids))
        y = torch.cat([g.reshape(-1) for g in grids])
        return laplace_bits(y, mu, log_scale).sum()

    def synthesize(self, grids: list[Tensor]) -> Tensor:
        """RGB in about [0, 1], (1, 3, H, W), from the quantized latents."""
        x = grids[-1]
        for j in range(len(grids) - 2, -1, -1):
            x = torch.cat([grids[j], upsample2(x, self.upsampling[j])], dim=1)
        for spec, conv in zip(self.arch.synthesis, self.synthesis, strict=True):
            inp = x
            if spec.k > 1:
                x = F.pad(x, (spec.k // 2,) * 4, mode="replicate")
            x = conv(x)
            if spec.relu:
                x = F.relu(x)
            if spec.residual:  # after the ReLU, so that the identity path never dies
                x = x + inp
        return x + 0.5
