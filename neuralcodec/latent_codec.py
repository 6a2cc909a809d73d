"""Latent codec: from latents ``y`` to coded streams and back.

It owns the *entropy-parameter path*: the hyper-latent ``z``, the hyper-synthesis, the
two-pass checkerboard context and the entropy-parameter network, which decide the
table index and the mean of every latent. That path runs on the CPU in float64 at both
ends, so encoder and decoder agree on every table index far more robustly than a float32
path would (it is 1/16 of the image's resolution, so this is cheap).

Coding order in the latent stream: anchors grouped by table index, then non-anchors
grouped by table index; ``z`` goes in its own stream, channel by channel.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .entropy_coder import SymbolDecoder, SymbolEncoder, TableSet, pack_varints, unpack_varints
from .model import HyperpriorCheckerboard, checkerboard_anchor_mask

PARAM_DEVICE = torch.device("cpu")
PARAM_DTYPE = torch.float64


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
    def __init__(self, model: HyperpriorCheckerboard):
        if model.gaussian_conditional._quantized_cdf.numel() == 0:
            raise ValueError("model has no coding tables: call model.update() after training")
        self.model = model

        def f64(module):
            return copy.deepcopy(module).to(PARAM_DEVICE, PARAM_DTYPE).eval()

        self.h_s = f64(model.h_s)
        self.context = f64(model.context)
        self.entropy_parameters = f64(model.entropy_parameters)
        self.gain_z_inv = f64(model.gain_z_inv)
        eb = model.entropy_bottleneck
        self.z_medians = eb._get_medians().detach().to(PARAM_DEVICE, PARAM_DTYPE)
        self.z_tables = _tables(eb)
        gc = model.gaussian_conditional
        self.scale_table = gc.scale_table.detach().to(PARAM_DEVICE, PARAM_DTYPE).contiguous()
        self.y_tables = _tables(gc)

    # -- the exact parameter path --------------------------------------------------------

    def _hyper(self, z_hat: Tensor, level: Tensor) -> Tensor:
        return self.h_s(z_hat * self.gain_z_inv(level))

    def _params(self, hyper: Tensor, ctx: Tensor | None) -> tuple[Tensor, Tensor]:
        if ctx is None:
            ctx = torch.zeros_like(hyper)
        scales, means = self.entropy_parameters(torch.cat([hyper, ctx], 1)).chunk(2, 1)
        return scales, means

    def _table_index(self, scales: Tensor) -> np.ndarray:
        # First table scale >= the predicted scale (CompressAI's convention).
        idx = torch.searchsorted(self.scale_table, scales.reshape(-1).contiguous())
        return idx.clamp_(max=len(self.scale_table) - 1).numpy()

    @staticmethod
    def _z_table_index(shape: torch.Size) -> np.ndarray:
        c = shape[1]
        return np.broadcast_to(np.arange(c).reshape(1, c, 1, 1), tuple(shape)).ravel()

    # -- coding --------------------------------------------------------------------------

    @torch.no_grad()
    def compress(self, y: Tensor, level: float) -> tuple[LatentStreams, DecodedLatents]:
        """``y``: float latents (1, M, h, w) from the analysis transform."""
        lv = torch.tensor([level], dtype=PARAM_DTYPE)
        z = self.model.hyper_analysis(y, lv.to(y.device, y.dtype)).to(PARAM_DEVICE, PARAM_DTYPE)
        z_sym = torch.round(z - self.z_medians)
        enc_z = SymbolEncoder()
        enc_z.encode(z_sym.long().numpy(), self._z_table_index(z.shape), self.z_tables)
        hyper = self._hyper(z_sym + self.z_medians, lv)

        y = y.to(PARAM_DEVICE, PARAM_DTYPE)
        anchor = checkerboard_anchor_mask(y.shape[2], y.shape[3]).expand_as(y)
        enc_y = SymbolEncoder()
        y_sym = torch.zeros_like(y)
        y_hat = torch.zeros_like(y)
        ctx = None
        for part in (anchor, ~anchor):
            scales, means = self._params(hyper, ctx)
            sym = torch.round(y - means)
            idx = self._table_index(scales[part])
            enc_y.encode(sym[part].long().numpy(), idx, self.y_tables)
            y_sym[part] = sym[part]
            y_hat[part] = (sym + means)[part]
            ctx = self.context(y_hat * anchor)

        z_bytes, z_esc = enc_z.finish()
        y_bytes, y_esc = enc_y.finish()
        streams = LatentStreams(z_bytes, y_bytes, pack_varints(z_esc + y_esc))
        decoded = DecodedLatents(
            y_hat.to(torch.float32), z_sym.long().numpy(), y_sym.long().numpy()
        )
        return streams, decoded

    @torch.no_grad()
    def decompress(
        self, streams: LatentStreams, latent_hw: tuple[int, int], level: float
    ) -> DecodedLatents:
        lv = torch.tensor([level], dtype=PARAM_DTYPE)
        h, w = latent_hw
        n, m = self.model.config.N, self.model.config.M
        escapes = unpack_varints(streams.escapes)
        z_shape = torch.Size((1, n, max(1, (h + 3) // 4), max(1, (w + 3) // 4)))
        z_dec = SymbolDecoder(streams.z, escapes)
        z_sym = z_dec.decode(self._z_table_index(z_shape), self.z_tables)
        z_sym_t = torch.from_numpy(z_sym.reshape(tuple(z_shape))).to(PARAM_DTYPE)
        hyper = self._hyper(z_sym_t + self.z_medians, lv)
        # h_s upsamples by 4; latents may be smaller when h, w are not multiples of 4.
        hyper = hyper[:, :, :h, :w]

        shape = (1, m, h, w)
        anchor = checkerboard_anchor_mask(h, w).expand(shape)
        dec_y = SymbolDecoder(streams.y, escapes)
        y_sym = torch.zeros(shape, dtype=PARAM_DTYPE)
        y_hat = torch.zeros(shape, dtype=PARAM_DTYPE)
        ctx = None
        for part in (anchor, ~anchor):
            scales, means = self._params(hyper, ctx)
            idx = self._table_index(scales[part])
            sym = torch.from_numpy(dec_y.decode(idx, self.y_tables)).to(PARAM_DTYPE)
            y_sym[part] = sym
            y_hat[part] = sym + means[part]
            ctx = self.context(y_hat * anchor)
        return DecodedLatents(y_hat.to(torch.float32), z_sym.reshape(tuple(z_shape)),
                              y_sym.long().numpy())
