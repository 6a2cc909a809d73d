"""Integer networks for the entropy-parameter path (Ballé et al. 2019, "Integer networks
for data compression with latent-variable models").

The hyper-synthesis ``h_s``, the checkerboard context and the entropy-parameter network
decide every latent's table index and mean. Computed in floating point, tiny differences
between machines, libraries or thread counts can pick another table and derail the
decoder. Here they are computed *exactly*:

* activations are integers on a fixed-point grid of ``2**-FRAC_BITS``, clamped to
  ``±ACT_LIMIT``;
* each layer's weights are integers ``round(w * 2**shift)`` with ``|w_int| <= 2**WEIGHT_BITS``
  (one power-of-two scale per layer), biases ``round(b * 2**(shift + FRAC_BITS))``;
* a layer is a float64 convolution of integer-valued tensors. Every product and partial
  sum is an integer below 2**53, so the result is exact in any summation order, on any
  CPU or GPU; it is rescaled with an exact floor division by ``2**shift``;
* LeakyReLU is ``floor(x * 41 / 4096)`` for negative ``x`` (slope ≈ 0.01), also exact;
* the rate-level gains are integers interpolated with integer arithmetic.

The integer form is derived from the float weights by exact operations only (scaling by
powers of two, rounding, ``frexp``), except the gains, whose exponentials are computed
once at export and stored as integers in the weights file.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...format.quality import STORED_MAX
from .model import checkerboard_anchor_mask

FRAC_BITS = 10  # activation grid: 1/1024
ACT_LIMIT = float(2**20)  # |activation| <= 1024.0 in real units
WEIGHT_BITS = 14
MAX_SHIFT = 30
GAIN_BITS = 12
LEAK_NUM, LEAK_SHIFT = 41, 12  # 41 / 4096 = 0.01001 ≈ LeakyReLU's 0.01
QUALITY_DENOM = STORED_MAX  # the stored quality's full scale

# Worst case of one output: ACT_LIMIT * 2**WEIGHT_BITS * (inputs per output) + bias must
# stay below 2**53 for float64 sums to be exact. The widest layer here has 192*25 inputs:
# 2**20 * 2**14 * 4800 < 2**47.
_EXACT_LIMIT = float(2**53)


@dataclass
class IntegerLayer:
    weight: Tensor  # float64, integer-valued
    bias: Tensor  # float64, integer-valued, on the 2**-(shift + FRAC_BITS) grid
    shift: int
    transposed: bool
    stride: int
    padding: int
    output_padding: int
    leaky: bool

    def __call__(self, a: Tensor) -> Tensor:
        if self.transposed:
            acc = F.conv_transpose2d(a, self.weight, self.bias, self.stride, self.padding,
                                     self.output_padding)
        else:
            acc = F.conv2d(a, self.weight, self.bias, self.stride, self.padding)
        return self.finish(acc)

    def finish(self, acc: Tensor) -> Tensor:
        """Rescale, activate and clamp exact accumulator values."""
        out = acc.mul_(2.0 ** -self.shift).floor_()  # acc is this layer's own tensor
        if self.leaky:  # x for x >= 0, floor(x * 41 / 4096) below: in place, no mask
            out = out.clamp_max(0).mul_(LEAK_NUM * 2.0**-LEAK_SHIFT).floor_().add_(
                out.clamp_min_(0))
        return out.clamp_(-ACT_LIMIT, ACT_LIMIT)

    def rows(self, a: Tensor) -> Tensor:
        """A 1x1 layer applied to (positions, channels) rows: one matrix product. Rows
        narrower than the layer's input stand for zeros in the channels after theirs
        (which add nothing to the exact sums, so they are not multiplied)."""
        weight = self.weight.view(self.weight.shape[0], -1)[:, :a.shape[1]]
        return self.finish(torch.addmm(self.bias, a, weight.t()))


def weight_shift(weight: Tensor) -> int:
    """Power-of-two scale that maps a layer's weights to |w_int| <= 2**WEIGHT_BITS."""
    _, exponent = torch.frexp(weight.detach().abs().max().double())  # max|w| < 2**exponent
    return min(MAX_SHIFT, WEIGHT_BITS - int(exponent))


def quantize_layer(
    module: nn.Conv2d | nn.ConvTranspose2d, leaky: bool, shift: int | None = None
) -> IntegerLayer:
    """Integer form of a layer; ``shift`` is the stored one for shipped weights."""
    w = module.weight.detach().to("cpu", torch.float64)
    if shift is None:
        shift = weight_shift(w)
    weight = torch.round(w * 2.0**shift)
    bias = module.bias.detach().to("cpu", torch.float64)
    bias = torch.round(bias * 2.0 ** (shift + FRAC_BITS))
    fan_in = weight[0].numel() if not isinstance(module, nn.ConvTranspose2d) else (
        weight.shape[0] * weight.shape[2] * weight.shape[3])
    if ACT_LIMIT * 2**WEIGHT_BITS * fan_in + bias.abs().max() >= _EXACT_LIMIT:
        raise ValueError("layer too wide for exact float64 integer arithmetic")
    transposed = isinstance(module, nn.ConvTranspose2d)
    return IntegerLayer(
        weight, bias, shift, transposed, module.stride[0], module.padding[0],
        module.output_padding[0] if transposed else 0, leaky,
    )


# The sub-networks that decide the coding tables, by their names in the model.
PARAM_PATH = ("h_s", "context", "entropy_parameters")


def param_path_convs(model: nn.Module, path: tuple[str, ...] = PARAM_PATH
                     ) -> dict[str, nn.Conv2d | nn.ConvTranspose2d]:
    """Every convolution of the parameter path (the sub-networks named by ``path``), by
    state-dict prefix (e.g. 'h_s.0')."""
    convs = {}
    for name, m in model.named_modules():
        if name.split(".")[0] in path and isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            convs[name] = m
    return convs


def quantize_sequential(
    seq: nn.Module, prefix: str, shifts: dict[str, int] | None = None
) -> list[IntegerLayer]:
    """Conv/deconv layers, each followed optionally by LeakyReLU(0.01)."""
    shifts = shifts or {}
    mods = list(seq) if isinstance(seq, nn.Sequential) else [seq]
    names = [f"{prefix}.{i}" for i in range(len(mods))] if isinstance(seq, nn.Sequential) else [
        prefix]
    layers: list[IntegerLayer] = []
    for i, m in enumerate(mods):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nxt = mods[i + 1] if i + 1 < len(mods) else None
            layers.append(quantize_layer(m, isinstance(nxt, nn.LeakyReLU), shifts.get(names[i])))
        elif not isinstance(m, nn.LeakyReLU):
            raise TypeError(f"no integer form for {type(m).__name__}")
    return layers


def integer_gains(log_gain: Tensor) -> Tensor:
    """(levels, C) int64 gains on a 2**-GAIN_BITS grid: the one float step, done at export."""
    return torch.round(log_gain.detach().double().exp() * 2**GAIN_BITS).to(torch.int64)


def interpolate_gain(gains: Tensor, quality: int) -> Tensor:
    """Integer gain for the stored quality (hundredths): linear between trained levels."""
    levels = gains.shape[0]
    pos = int(quality) * (levels - 1)
    lo = min(pos // QUALITY_DENOM, levels - 2)
    frac = pos - lo * QUALITY_DENOM
    g = ((QUALITY_DENOM - frac) * gains[lo] + frac * gains[lo + 1]) // QUALITY_DENOM
    return g.to(torch.float64)


class IntegerHyperPath:
    """The exact hyper-synthesis: integer z symbols in, hyper features out; and the table
    index of a predicted scale. What every integer parameter path of the family shares.

    All tensors crossing this interface are float64 holding *real* values that lie exactly
    on the 2**-FRAC_BITS grid (means, decoded latents), so callers can add and compare them
    without rounding.
    """

    def __init__(self, model, int_gain_z_inv: Tensor, shifts: dict[str, int] | None = None):
        self.h_s = quantize_sequential(model.h_s, "h_s", shifts)
        self.gain_z_inv = int_gain_z_inv.to(torch.int64)
        tables = model.coding_tables()
        self.z_medians = torch.round(tables.z_medians * 2**FRAC_BITS)
        # Table i serves scales <= scale_table[i]: integer thresholds on the grid.
        scale_table = tables.scale_table
        self.thresholds = torch.ceil(scale_table * 2**FRAC_BITS).contiguous()
        # Calibration: set to a dict to record each layer's largest |activation|.
        self.peaks: dict[str, float] | None = None

    def _run(self, layers: list[IntegerLayer], a: Tensor, name: str = "") -> Tensor:
        for i, layer in enumerate(layers):
            a = self._record(f"{name}[{i}]", layer(a))
        return a

    def hyper(self, z_symbols: Tensor, quality: int) -> Tensor:
        z = (z_symbols * 2**FRAC_BITS + self.z_medians).clamp_(-ACT_LIMIT, ACT_LIMIT)
        g = interpolate_gain(self.gain_z_inv, quality).view(1, -1, 1, 1)
        z = torch.floor(z * g * 2.0**-GAIN_BITS).clamp_(-ACT_LIMIT, ACT_LIMIT)
        return self._run(self.h_s, z, "h_s")

    def table_index(self, scales: Tensor) -> Tensor:
        """Table index (int64) of integer scales on the grid: the first table whose scale
        is at least the predicted one (the last if none is)."""
        idx = torch.searchsorted(self.thresholds, scales.reshape(-1).contiguous())
        return idx.clamp_(max=len(self.thresholds) - 1).view(scales.shape)

    def _record(self, key: str, a: Tensor) -> Tensor:
        if self.peaks is not None and a.numel():
            self.peaks[key] = max(self.peaks.get(key, 0.0), float(a.abs().max()))
        return a


def anchor_context(layer: IntegerLayer, y_hat_anchor: Tensor, positions: Tensor,
                   tap_weights: dict[int, Tensor]) -> Tensor:
    """A (k x k, stride 1) context layer over the decoded anchors ``y_hat_anchor`` (1, C,
    h, w; real values on the grid), at the P ``positions`` (an (h, w) mask of one
    checkerboard colour), as (P, out channels) integer rows.

    Only the taps that fall on anchors are summed (12 of 25 for 5x5): other latents are
    zero when the context runs, so the sums, exact integers, are the full convolution's.
    ``tap_weights`` caches the gathered kernels per parity."""
    k = layer.weight.shape[-1]
    r = k // 2
    ii, jj = positions.nonzero(as_tuple=True)
    parity = int(ii[0] + jj[0]) % 2 if len(ii) else 0
    anchors = checkerboard_anchor_mask(*positions.shape)[0]
    a = (y_hat_anchor[0] * anchors * 2**FRAC_BITS).clamp_(-ACT_LIMIT, ACT_LIMIT)
    a = F.pad(a, (r, r, r, r))
    # Anchor taps of a position of this parity: offsets with di + dj of its parity.
    taps = [(di, dj) for di in range(-r, r + 1) for dj in range(-r, r + 1)
            if (di + dj) % 2 == parity]
    gathered = torch.cat([a[:, ii + di + r, jj + dj + r] for di, dj in taps])
    weight = tap_weights.get(parity)
    if weight is None:
        w = layer.weight  # (out, in, k, k)
        weight = torch.cat([w[:, :, di + r, dj + r] for di, dj in taps], 1)
        tap_weights[parity] = weight
    acc = torch.addmm(layer.bias[:, None], weight, gathered)  # (out, P)
    return layer.finish(acc).t()


class IntegerParamPath(IntegerHyperPath):
    """The exact entropy-parameter path: integer z symbols in, table indices and means out
    (the hyper-synthesis, the checkerboard context and the entropy-parameter network)."""

    def __init__(self, model, int_gain_z_inv: Tensor, shifts: dict[str, int] | None = None):
        super().__init__(model, int_gain_z_inv, shifts)
        self.context = quantize_sequential(model.context, "context", shifts)
        self.entropy_parameters = quantize_sequential(
            model.entropy_parameters, "entropy_parameters", shifts)
        self._tap_weights: dict[int, Tensor] = {}

    def params(self, hyper: Tensor, y_hat_anchor: Tensor | None, positions: Tensor
               ) -> tuple[Tensor, Tensor]:
        """(table index as int64, mean as real float64), each (channels, P), at the P
        ``positions`` (an (h, w) mask of one checkerboard colour, raster order); the
        context comes from the decoded anchors ``y_hat_anchor`` (None: no context).

        Only those positions are computed, and the 5x5 context only over the taps that
        fall on anchors (see :func:`anchor_context`)."""
        a = hyper[0][:, positions].t()  # (P, channels)
        if y_hat_anchor is not None:  # else the context is zeros: rows() leaves them out
            a = torch.cat([a, self._context_at(y_hat_anchor, positions)], 1)
        for i, layer in enumerate(self.entropy_parameters):
            a = self._record(f"entropy_parameters[{i}]", layer.rows(a))
        scales, means = a.t().chunk(2, 0)
        return self.table_index(scales), means * 2.0**-FRAC_BITS

    def _context_at(self, y_hat_anchor: Tensor, positions: Tensor) -> Tensor:
        (layer,) = self.context
        ctx = anchor_context(layer, y_hat_anchor, positions, self._tap_weights)
        return self._record("context[0]", ctx)
