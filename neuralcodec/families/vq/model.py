"""The VQ-VAE model: residual product quantization of the latents and a context prior.

The analysis ``g_a`` (16x down, M channels) gives latents ``y``; per-channel gains map
them into the space ``z = y * scale_in`` where they are vector-quantized. ``z`` is cut
into ``groups`` channel groups (product quantization) and each group is quantized by
``stages`` residual codebooks of ``codebook_size`` codes (residual VQ). A *unit* is one
(stage, group) codebook; units are ordered stage-major, and coding the first ``n`` units
gives one operating point, so one model spans many rates (trained with quantizer
dropout: each sample keeps a random number of units). The synthesis ``g_s`` decodes
``z_hat * scale_out``.

Indices are chosen by entropy-constrained VQ (encoder side only): the code minimising
``||r - c||^2 + beta * bits(c)``, so the rate term shapes which codes are used.

The prior is a learned categorical per unit and *context*: the context of a unit's index
is an integer bin of its *parent*'s index at the same position (the same group at the
previous stage; for stage 0, the previous group), from a fixed index -> bin map. Coding
uses 16-bit integer CDFs made from the logits once, at export; the decoder only ever
sees those tables and integer indices.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...entropy import quantized_cdf
from ..layers import GDN, conv, deconv


@dataclass(frozen=True)
class VQConfig:
    """Everything needed to rebuild a VQ model (stored in the JSON card).

    A unit's id is ``stage * groups + group``; ``unit_order`` is the coding order (empty:
    stage-major). Coding ``n`` units means coding the first ``n`` of that order.
    """

    N: int = 128
    M: int = 192
    groups: int = 8
    stages: int = 8
    codebook_size: int = 256
    contexts: int = 4  # bins of the parent's index that select a unit's table
    beta: float = 0.1155  # ECVQ: squared latent error traded per bit (ln 2 / 6)
    min_units: int = 1  # units coded at quality 0
    max_units: int = 0  # units coded at quality 100 (0: all of them)
    unit_order: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.M % self.groups:
            raise ValueError("M must be a multiple of groups")
        if not 1 <= self.min_units <= self.top_units <= self.units:
            raise ValueError("need 1 <= min_units <= max_units <= units")
        order = self.order
        if sorted(order) != list(range(self.units)):
            raise ValueError("unit_order must be a permutation of the units")
        rank = {u: i for i, u in enumerate(order)}
        for u in order:
            parent = self.parent(u)
            if parent is not None and rank[parent] > rank[u]:
                raise ValueError(f"unit {u} is ordered before its context parent {parent}")

    @property
    def units(self) -> int:
        return self.groups * self.stages

    @property
    def top_units(self) -> int:
        return self.max_units or self.units

    @property
    def group_dim(self) -> int:
        return self.M // self.groups

    @property
    def order(self) -> tuple[int, ...]:
        return tuple(self.unit_order) or tuple(range(self.units))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["unit_order"] = list(self.unit_order)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> VQConfig:
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        d["unit_order"] = tuple(int(u) for u in d.get("unit_order", ()))
        return cls(**d)

    def parent(self, unit: int) -> int | None:
        """The unit whose index at the same position gives ``unit`` its context: the same
        group at the previous stage; for stage 0, the previous group."""
        stage, group = divmod(unit, self.groups)
        if stage > 0:
            return unit - self.groups
        return unit - 1 if group > 0 else None


def units_at(fraction: float, config: VQConfig) -> int:
    """Units coded at a rate point's ``fraction`` 0..1 (:class:`~..base.RatePoint`):
    linear from ``min_units`` to ``top_units``, so the rate never decreases with it."""
    t = min(max(float(fraction), 0.0), 1.0)
    span = config.top_units - config.min_units
    return config.min_units + int(np.floor(t * span + 0.5))


def to_groups(z: Tensor, groups: int) -> Tensor:
    """(B, M, H, W) -> (groups, B*H*W, M // groups): one row of vectors per group."""
    b, m, h, w = z.shape
    return z.permute(0, 2, 3, 1).reshape(b * h * w, groups, m // groups).transpose(0, 1)


def from_groups(v: Tensor, shape: tuple[int, int, int, int]) -> Tensor:
    b, m, h, w = shape
    return v.transpose(0, 1).reshape(b, h, w, m).permute(0, 3, 1, 2)


@dataclass
class Quantized:
    """Every unit's indices, contexts and codewords for a batch of latents."""

    indices: Tensor  # (stages, groups, P) long, P = B*H*W
    contexts: Tensor  # (stages, groups, P) long
    codewords: Tensor  # (stages, groups, P, d)
    codebook_loss: Tensor


class ResidualVQ(nn.Module):
    """Codebooks (stages, groups, K, d), chosen by entropy-constrained nearest search."""

    def __init__(self, config: VQConfig):
        super().__init__()
        self.config = config
        c = config
        self.codebooks = nn.Parameter(torch.randn(c.stages, c.groups, c.codebook_size,
                                                  c.group_dim) * 0.1)

    def assign(self, r: Tensor, stage: int, groups: slice, bits: Tensor | None) -> Tensor:
        """Indices (g, P) for residuals ``r`` (g, P, d) of ``groups`` at ``stage``;
        ``bits`` (g, P, K): each candidate's rate (None: plain nearest neighbour)."""
        book = self.codebooks[stage, groups].to(r.dtype)
        # ||r||^2 is the same for every candidate, so it is left out.
        cost = (book * book).sum(-1).unsqueeze(1) - 2 * torch.bmm(r, book.transpose(1, 2))
        if bits is not None:
            cost = cost + self.config.beta * bits
        return cost.argmin(-1)

    def lookup(self, stage: int, groups: slice, idx: Tensor) -> Tensor:
        """Codewords (g, P, d) of indices (g, P)."""
        book = self.codebooks[stage, groups]
        return torch.gather(book, 1, idx.unsqueeze(-1).expand(-1, -1, book.shape[-1]))


class IndexPrior(nn.Module):
    """Categorical logits per (unit, context) and the index -> context-bin map."""

    def __init__(self, config: VQConfig):
        super().__init__()
        self.config = config
        c = config
        self.logits = nn.Parameter(torch.zeros(c.units, c.contexts, c.codebook_size))
        # context_bins[u, k]: the context that index k of unit u gives its child unit.
        self.register_buffer("context_bins",
                             torch.zeros(c.units, c.codebook_size, dtype=torch.long))

    def child_contexts(self, units: slice, idx: Tensor) -> Tensor:
        """Contexts (g, P) that indices (g, P) of ``units`` give their children."""
        return torch.gather(self.context_bins[units], 1, idx)

    def log2_probs(self, units: slice) -> Tensor:
        """(g, contexts, K) log2-probabilities of ``units``."""
        return F.log_softmax(self.logits[units], dim=-1) / np.log(2.0)

    @torch.no_grad()
    def refresh_context_bins(self, codebooks: Tensor, usage: Tensor) -> None:
        """Bins = usage-weighted quantiles of the codeword norm: a larger parent code
        means more local detail, which predicts the child's distribution."""
        c = self.config
        norms = codebooks.norm(dim=-1).reshape(c.units, c.codebook_size)
        weights = usage.reshape(c.units, c.codebook_size) + 1e-6
        for u in range(c.units):
            order = torch.argsort(norms[u])
            cum = torch.cumsum(weights[u][order], 0)
            cum = cum / cum[-1]
            bins = torch.clamp((cum * c.contexts - 1e-9).floor().long(), 0, c.contexts - 1)
            self.context_bins[u, order] = bins


class VQAutoencoder(nn.Module):
    """g_a -> residual product VQ -> g_s, with the index prior used for the rate."""

    def __init__(self, config: VQConfig | None = None):
        super().__init__()
        self.config = c = config or VQConfig()
        N, M = c.N, c.M
        self.g_a = nn.Sequential(
            conv(3, N), GDN(N), conv(N, N), GDN(N), conv(N, N), GDN(N), conv(N, M)
        )
        self.g_s = nn.Sequential(
            deconv(M, N), GDN(N, inverse=True), deconv(N, N), GDN(N, inverse=True),
            deconv(N, N), GDN(N, inverse=True), deconv(N, 3),
        )
        self.log_scale_in = nn.Parameter(torch.zeros(M))
        self.log_scale_out = nn.Parameter(torch.zeros(M))
        self.vq = ResidualVQ(c)
        self.prior = IndexPrior(c)
        self.register_buffer("usage", torch.ones(c.stages, c.groups, c.codebook_size))

    def analysis(self, x: Tensor) -> Tensor:
        return self.g_a(x) * self.log_scale_in.exp().view(1, -1, 1, 1)

    def synthesis(self, z_hat: Tensor) -> Tensor:
        return self.g_s(z_hat * self.log_scale_out.exp().view(1, -1, 1, 1))

    def quantize(self, z: Tensor, use_rate: bool = True,
                 bits_table: Tensor | None = None) -> Quantized:
        """All units of latents ``z`` (B, M, H, W). Stage by stage (groups together;
        stage 0 group by group, as its contexts chain through the groups). ``bits_table``
        (units, contexts, K) replaces the prior's rates (the coder passes its tables')."""
        c = self.config
        G = c.groups
        r = to_groups(z.detach(), G)
        if bits_table is None:
            bits_table = -self.prior.log2_probs(slice(None)).detach()
        bits_table = bits_table.to(r.dtype).view(c.stages, G, c.contexts, -1)
        indices, contexts, codewords = [], [], []
        loss = z.new_zeros(())
        spans = [[slice(g, g + 1) for g in range(G)]] + [[slice(0, G)]] * (c.stages - 1)
        for stage, slices in enumerate(spans):
            idx_s, ctx_s = [], []
            for groups in slices:
                n = groups.stop - groups.start
                if stage > 0:
                    units = slice(stage * G - G, stage * G)
                    ctx = self.prior.child_contexts(units, indices[-1])
                elif groups.start > 0:
                    ctx = self.prior.child_contexts(slice(groups.start - 1, groups.start),
                                                    idx_s[-1])
                else:
                    ctx = torch.zeros(n, r.shape[1], dtype=torch.long, device=r.device)
                bits = None
                if use_rate:
                    table = bits_table[stage, groups]  # (g, C, K)
                    bits = torch.gather(table, 1, ctx.unsqueeze(-1).expand(
                        -1, -1, table.shape[-1]))
                idx_s.append(self.vq.assign(r[groups], stage, groups, bits))
                ctx_s.append(ctx)
            idx = torch.cat(idx_s)
            cw = self.vq.lookup(stage, slice(0, G), idx)
            loss = loss + (cw - r.to(cw.dtype)).pow(2).mean()
            r = r - cw.detach().to(r.dtype)
            indices.append(idx)
            contexts.append(torch.cat(ctx_s))
            codewords.append(cw)
        return Quantized(torch.stack(indices), torch.stack(contexts), torch.stack(codewords),
                         loss / c.stages)

    def unit_ranks(self, device=None) -> Tensor:
        """(stages, groups): each unit's position in the coding order."""
        rank = torch.empty(self.config.units, dtype=torch.long)
        rank[list(self.config.order)] = torch.arange(self.config.units)
        return rank.view(self.config.stages, self.config.groups).to(device)

    def forward(self, x: Tensor, units: Tensor, z: Tensor | None = None) -> dict:
        """Training pass; ``units`` (B,): how many units (in coding order) each sample keeps."""
        c = self.config
        if z is None:
            z = self.analysis(x)
        b, _, h, w = z.shape
        q = self.quantize(z)
        keep = self.unit_ranks(z.device).unsqueeze(-1) < units.view(1, 1, -1)  # (S, G, B)
        keep_p = keep.repeat_interleave(h * w, dim=2).unsqueeze(-1).to(q.codewords.dtype)
        z_hat = from_groups((q.codewords * keep_p).sum(0), tuple(z.shape))
        x_hat = self.synthesis(z_hat)
        log2p = self.prior.log2_probs(slice(None)).view(c.stages, c.groups, c.contexts, -1)
        s_idx = torch.arange(c.stages, device=z.device).view(-1, 1, 1)
        g_idx = torch.arange(c.groups, device=z.device).view(1, -1, 1)
        unit_bits = -log2p[s_idx, g_idx, q.contexts, q.indices].view(c.stages, c.groups, b, -1)
        bits = (unit_bits.sum(-1) * keep).sum((0, 1))
        return {"x_hat": x_hat, "bits": bits, "quantized": q,
                "codebook_loss": q.codebook_loss, "z": z}

    @torch.no_grad()
    def coding_tables(self) -> np.ndarray:
        """int32 CDFs (units * contexts, K + 2) from the current logits."""
        probs = torch.softmax(self.prior.logits.double(), -1).cpu().numpy()
        rows = [quantized_cdf(p) for p in probs.reshape(-1, probs.shape[-1])]
        return np.stack(rows)


def from_hyperprior(hp, config: VQConfig, level: float = 0.0) -> VQAutoencoder:
    """A VQ model warm-started from a hyperprior model's transforms: ``z`` lives in the
    hyperprior's gained latent space at ``level`` (where its quantizer step is 1), and
    channels are sorted by descending energy weight so that group 0 holds the channels
    that matter most (a partial stage then codes them first)."""
    model = VQAutoencoder(config)
    model.g_a.load_state_dict(hp.g_a.state_dict())
    model.g_s.load_state_dict(hp.g_s.state_dict())
    lv = torch.tensor([level])
    with torch.no_grad():
        gain = hp.gain_y(lv).flatten()
        gain_inv = hp.gain_y_inv(lv).flatten()
        model.log_scale_in.copy_(gain.log())
        model.log_scale_out.copy_(gain_inv.log())
    return model


def permute_channels(model: VQAutoencoder, order: Tensor) -> None:
    """Reorder latent channels (g_a's output, the scales, g_s's input) in place."""
    with torch.no_grad():
        last = model.g_a[-1]
        last.weight.copy_(last.weight[order])
        last.bias.copy_(last.bias[order])
        first = model.g_s[0]
        first.weight.copy_(first.weight[order])
        model.log_scale_in.copy_(model.log_scale_in[order])
        model.log_scale_out.copy_(model.log_scale_out[order])


__all__ = [
    "Quantized",
    "VQAutoencoder",
    "VQConfig",
    "from_groups",
    "from_hyperprior",
    "permute_channels",
    "quantized_cdf",
    "to_groups",
    "units_at",
]
