"""Latent codec: from latents ``y`` to coded streams and back.

It drives the *entropy-parameter path*, which decides the table index and the mean of
every latent: the hyper-latent ``z``, the hyper-synthesis, the two-pass checkerboard
context and the entropy-parameter network. Two implementations of that path exist:

* :class:`~neuralcodec.integer_net.IntegerParamPath` (format version 2, the default):
  integer arithmetic, bit-exact on any machine;
* :class:`FloatParamPath` (format version 1): the same networks in float64 on the CPU,
  kept so that version-1 files still decode and as the reference for the rate cost of
  integerization.

Coding order in the latent stream: anchors grouped by table index, then non-anchors
grouped by table index; ``z`` goes in its own stream, channel by channel.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from .container import QUALITY_SCALE
from .entropy_coder import SymbolDecoder, SymbolEncoder, TableSet, pack_varints, unpack_varints
from .model import HyperpriorCheckerboard, checkerboard_anchor_mask, rate_level

PARAM_DTYPE = torch.float64


class ParamPath(Protocol):
    def hyper(self, z_symbols: Tensor, quality: int) -> Tensor: ...

    def params(self, hyper: Tensor, y_hat_anchor: Tensor | None) -> tuple[Tensor, Tensor]:
        """(table index, mean) for every latent position; context from decoded anchors."""
        ...


class FloatParamPath:
    """The parameter path in float64 on the CPU (format version 1)."""

    def __init__(self, model: HyperpriorCheckerboard):
        def f64(module):
            return copy.deepcopy(module).to("cpu", PARAM_DTYPE).eval()

        self.levels = model.config.levels
        self.h_s = f64(model.h_s)
        self.context = f64(model.context)
        self.entropy_parameters = f64(model.entropy_parameters)
        self.gain_z_inv = f64(model.gain_z_inv)
        self.z_medians = model.entropy_bottleneck._get_medians().detach().cpu().double()
        self.scale_table = model.gaussian_conditional.scale_table.detach().cpu().double()

    @torch.no_grad()
    def hyper(self, z_symbols: Tensor, quality: int) -> Tensor:
        level = torch.tensor([rate_level(quality / QUALITY_SCALE, self.levels)],
                             dtype=PARAM_DTYPE)
        return self.h_s((z_symbols + self.z_medians) * self.gain_z_inv(level))

    @torch.no_grad()
    def params(self, hyper: Tensor, y_hat_anchor: Tensor | None) -> tuple[Tensor, Tensor]:
        ctx = torch.zeros_like(hyper) if y_hat_anchor is None else self.context(y_hat_anchor)
        scales, means = self.entropy_parameters(torch.cat([hyper, ctx], 1)).chunk(2, 1)
        # First table scale >= the predicted scale (CompressAI's convention).
        idx = torch.searchsorted(self.scale_table, scales.reshape(-1).contiguous())
        idx = idx.clamp_(max=len(self.scale_table) - 1).view(scales.shape)
        return idx, means


@dataclass
class LatentStreams:
    z: bytes
    y: bytes
    escapes: bytes


@dataclass
class DecodedLatents:
    y_hat: Tensor  # float32 (1, M, h, w), ready for the synthesis transform
    z_symbols: np.ndarray  # int64, for tests and diagnostics
    y_symbols: np.ndarray


def _tables(module) -> TableSet:
    return TableSet(
        module._quantized_cdf.cpu().numpy(),
        module._cdf_length.cpu().numpy(),
        module._offset.cpu().numpy(),
    )


class LatentCodec:
    def __init__(self, model: HyperpriorCheckerboard, path: ParamPath):
        if model.gaussian_conditional._quantized_cdf.numel() == 0:
            raise ValueError("model has no coding tables: call model.update() after training")
        self.model = model
        self.path = path
        self.z_medians = model.entropy_bottleneck._get_medians().detach().cpu().double()
        self.z_tables = _tables(model.entropy_bottleneck)
        self.y_tables = _tables(model.gaussian_conditional)

    @staticmethod
    def _z_table_index(shape: tuple[int, ...]) -> np.ndarray:
        c = shape[1]
        return np.broadcast_to(np.arange(c).reshape(1, c, 1, 1), shape).ravel()

    @torch.no_grad()
    def compress(self, y: Tensor, quality: int) -> tuple[LatentStreams, DecodedLatents]:
        """``y``: float latents (1, M, h, w) from the analysis transform at ``quality``
        (stored integer, hundredths)."""
        level = rate_level(quality / QUALITY_SCALE, self.model.config.levels)
        lv = torch.tensor([level], device=y.device, dtype=y.dtype)
        z = self.model.hyper_analysis(y, lv).to("cpu", PARAM_DTYPE)
        z_sym = torch.round(z - self.z_medians)
        enc_z = SymbolEncoder()
        enc_z.encode(z_sym.long().numpy(), self._z_table_index(tuple(z.shape)), self.z_tables)
        hyper = self.path.hyper(z_sym, quality)

        y = y.to("cpu", PARAM_DTYPE)
        anchor = checkerboard_anchor_mask(y.shape[2], y.shape[3]).expand_as(y)
        enc_y = SymbolEncoder()
        y_sym = torch.zeros_like(y)
        y_hat = torch.zeros_like(y)
        for part in (anchor, ~anchor):
            idx, means = self.path.params(hyper, None if part is anchor else y_hat)
            sym = torch.round(y - means)
            enc_y.encode(sym[part].long().numpy(), idx[part].numpy(), self.y_tables)
            y_sym[part] = sym[part]
            y_hat[part] = (sym + means)[part]

        z_bytes, z_esc = enc_z.finish()
        y_bytes, y_esc = enc_y.finish()
        streams = LatentStreams(z_bytes, y_bytes, pack_varints(z_esc + y_esc))
        decoded = DecodedLatents(y_hat.float(), z_sym.long().numpy(), y_sym.long().numpy())
        return streams, decoded

    @torch.no_grad()
    def decompress(
        self, streams: LatentStreams, latent_hw: tuple[int, int], quality: int
    ) -> DecodedLatents:
        h, w = latent_hw  # multiples of 4: images are padded to multiples of 64
        n, m = self.model.config.N, self.model.config.M
        escapes = unpack_varints(streams.escapes)
        z_shape = (1, n, h // 4, w // 4)
        z_dec = SymbolDecoder(streams.z, escapes)
        z_sym = z_dec.decode(self._z_table_index(z_shape), self.z_tables).reshape(z_shape)
        hyper = self.path.hyper(torch.from_numpy(z_sym).to(PARAM_DTYPE), quality)

        shape = (1, m, h, w)
        anchor = checkerboard_anchor_mask(h, w).expand(shape)
        dec_y = SymbolDecoder(streams.y, escapes)
        y_sym = torch.zeros(shape, dtype=PARAM_DTYPE)
        y_hat = torch.zeros(shape, dtype=PARAM_DTYPE)
        for part in (anchor, ~anchor):
            idx, means = self.path.params(hyper, None if part is anchor else y_hat)
            sym = torch.from_numpy(dec_y.decode(idx[part].numpy(), self.y_tables))
            y_sym[part] = sym.to(PARAM_DTYPE)
            y_hat[part] = sym.to(PARAM_DTYPE) + means[part]
        return DecodedLatents(y_hat.float(), z_sym, y_sym.long().numpy())
