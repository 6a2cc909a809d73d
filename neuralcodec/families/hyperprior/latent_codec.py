"""Latent codec: from latents ``y`` to coded streams and back.

It drives the *entropy-parameter path*, which decides the table index and the mean of
every latent: the hyper-latent ``z``, the hyper-synthesis, the two-pass checkerboard
context and the entropy-parameter network. Two implementations of that path exist:

* :class:`~.integer_net.IntegerParamPath` (format versions 2 and 3, the default):
  integer arithmetic, bit-exact on any machine;
* :class:`FloatParamPath` (format version 1): the same networks in float64 on the CPU,
  kept so that version-1 files still decode and as the reference for the rate cost of
  integerization.

Coding order in the latent stream: anchors grouped by table index, then non-anchors
grouped by table index; ``z`` goes in its own stream, channel by channel.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from ...entropy import SymbolDecoder, SymbolEncoder, pack_varints, unpack_varints
from ...format.chunks import require_chunks
from ...format.quality import from_stored
from ...stages import stage
from .model import HyperpriorCheckerboard, checkerboard_anchor_mask, rate_level
from .tables import CodingTables

PARAM_DTYPE = torch.float64


class ParamPath(Protocol):
    def hyper(self, z_symbols: Tensor, quality: int) -> Tensor: ...

    def params(self, hyper: Tensor, y_hat_anchor: Tensor | None, positions: Tensor
               ) -> tuple[Tensor, Tensor]:
        """(table index, mean), each (channels, P), at the P ``positions`` (an (h, w)
        mask, raster order); context from decoded anchors (None: none)."""
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
        tables = model.coding_tables()
        self.z_medians = tables.z_medians
        self.scale_table = tables.scale_table

    @torch.no_grad()
    def hyper(self, z_symbols: Tensor, quality: int) -> Tensor:
        level = torch.tensor([rate_level(from_stored(quality), self.levels)],
                             dtype=PARAM_DTYPE)
        return self.h_s((z_symbols + self.z_medians) * self.gain_z_inv(level))

    @torch.no_grad()
    def params(self, hyper: Tensor, y_hat_anchor: Tensor | None, positions: Tensor
               ) -> tuple[Tensor, Tensor]:
        ctx = torch.zeros_like(hyper) if y_hat_anchor is None else self.context(y_hat_anchor)
        out = self.entropy_parameters(torch.cat([hyper, ctx], 1))[0][:, positions]
        scales, means = out.chunk(2, 0)
        # First table scale >= the predicted scale (CompressAI's convention).
        idx = torch.searchsorted(self.scale_table, scales.reshape(-1).contiguous())
        idx = idx.clamp_(max=len(self.scale_table) - 1).view(scales.shape)
        return idx, means


@dataclass
class LatentStreams:
    z: bytes
    y: bytes
    escapes: bytes

    def to_chunks(self, tags: tuple[bytes, bytes, bytes]) -> dict[bytes, bytes]:
        """Container chunks under a family's (z, y, escapes) tags; no escapes, no chunk."""
        chunks = {tags[0]: self.z, tags[1]: self.y}
        if self.escapes:
            chunks[tags[2]] = self.escapes
        return chunks

    @classmethod
    def from_chunks(cls, chunks: Mapping[bytes, bytes], tags: tuple[bytes, bytes, bytes]
                    ) -> LatentStreams:
        require_chunks(chunks, tags[:2])
        return cls(chunks[tags[0]], chunks[tags[1]], chunks.get(tags[2], b""))


@dataclass
class DecodedLatents:
    y_hat: Tensor  # float32 (1, M, h, w), ready for the synthesis transform
    z_symbols: np.ndarray  # int64, for tests and diagnostics
    y_symbols: np.ndarray


class LatentCodec:
    def __init__(self, model: HyperpriorCheckerboard, path: ParamPath,
                 tables: CodingTables | None = None):
        tables = tables or model.coding_tables()
        self.model = model
        self.path = path
        self.z_medians = tables.z_medians
        self.z_tables = tables.z
        self.y_tables = tables.y

    @staticmethod
    def _z_table_index(shape: tuple[int, ...]) -> np.ndarray:
        c = shape[1]
        return np.broadcast_to(np.arange(c).reshape(1, c, 1, 1), shape).ravel()

    @torch.no_grad()
    def z_symbols(self, y: Tensor, quality: int) -> Tensor:
        """The hyper-latent of ``y`` as coded: round(z - median), float64 on the CPU."""
        level = rate_level(from_stored(quality), self.model.config.levels)
        lv = torch.tensor([level], device=y.device, dtype=y.dtype)
        with stage("entropy parameters"):
            z = self.model.hyper_analysis(y, lv).to("cpu", PARAM_DTYPE)
        return torch.round(z - self.z_medians)

    def _encode_hyper(self, y: Tensor, quality: int, z_sym: Tensor | None
                      ) -> tuple[Tensor, SymbolEncoder, Tensor]:
        """z's symbols (chosen here unless given), their encoder, and the hyper features."""
        if z_sym is None:
            z_sym = self.z_symbols(y, quality)
        enc_z = SymbolEncoder()
        enc_z.encode(z_sym.long().numpy(), self._z_table_index(tuple(z_sym.shape)),
                     self.z_tables)
        with stage("entropy parameters"):
            hyper = self.path.hyper(z_sym, quality)
        return z_sym, enc_z, hyper

    @staticmethod
    def _finish(enc_z: SymbolEncoder, enc_y: SymbolEncoder, z_sym: Tensor, y_hat: Tensor,
                y_sym: Tensor) -> tuple[LatentStreams, DecodedLatents]:
        z_bytes, z_esc = enc_z.finish()
        y_bytes, y_esc = enc_y.finish()
        streams = LatentStreams(z_bytes, y_bytes, pack_varints(z_esc + y_esc))
        decoded = DecodedLatents(y_hat.float(), z_sym.long().numpy(), y_sym.long().numpy())
        return streams, decoded

    def _decode_hyper(self, streams: LatentStreams, latent_hw: tuple[int, int],
                      quality: int) -> tuple[list[int], np.ndarray, Tensor]:
        """The escapes, z's symbols and the hyper features of coded streams."""
        h, w = latent_hw  # multiples of 4: images are padded to multiples of 64
        escapes = unpack_varints(streams.escapes)
        z_shape = (1, self.model.config.N, h // 4, w // 4)
        z_dec = SymbolDecoder(streams.z, escapes)
        z_sym = z_dec.decode(self._z_table_index(z_shape), self.z_tables).reshape(z_shape)
        with stage("entropy parameters"):
            hyper = self.path.hyper(torch.from_numpy(z_sym).to(PARAM_DTYPE), quality)
        return escapes, z_sym, hyper

    @torch.no_grad()
    def compress(self, y: Tensor, quality: int, z_sym: Tensor | None = None
                 ) -> tuple[LatentStreams, DecodedLatents]:
        """``y``: float latents (1, M, h, w) from the analysis transform at ``quality``
        (stored integer, hundredths); ``z_sym``: its hyper-latent symbols when already
        chosen (see :meth:`z_symbols`)."""
        z_sym, enc_z, hyper = self._encode_hyper(y, quality, z_sym)

        y = y.to("cpu", PARAM_DTYPE)
        anchor = checkerboard_anchor_mask(y.shape[2], y.shape[3])[0, 0]
        enc_y = SymbolEncoder()
        y_sym = torch.zeros_like(y)
        y_hat = torch.zeros_like(y)
        for part in (anchor, ~anchor):  # symbols of a part: channel by channel, raster
            with stage("entropy parameters"):
                idx, means = self.path.params(hyper, None if part is anchor else y_hat, part)
            sym = torch.round(y[0][:, part] - means)
            enc_y.encode(sym.long().numpy(), idx.numpy(), self.y_tables)
            y_sym[0][:, part] = sym
            y_hat[0][:, part] = sym + means

        return self._finish(enc_z, enc_y, z_sym, y_hat, y_sym)

    @torch.no_grad()
    def decompress(
        self, streams: LatentStreams, latent_hw: tuple[int, int], quality: int
    ) -> DecodedLatents:
        h, w = latent_hw
        m = self.model.config.M
        escapes, z_sym, hyper = self._decode_hyper(streams, latent_hw, quality)

        shape = (1, m, h, w)
        anchor = checkerboard_anchor_mask(h, w)[0, 0]
        dec_y = SymbolDecoder(streams.y, escapes)
        y_sym = torch.zeros(shape, dtype=PARAM_DTYPE)
        y_hat = torch.zeros(shape, dtype=PARAM_DTYPE)
        for part in (anchor, ~anchor):
            with stage("entropy parameters"):
                idx, means = self.path.params(hyper, None if part is anchor else y_hat, part)
            sym = torch.from_numpy(dec_y.decode(idx.numpy(), self.y_tables))
            sym = sym.to(PARAM_DTYPE).view(means.shape)
            y_sym[0][:, part] = sym
            y_hat[0][:, part] = sym + means
        return DecodedLatents(y_hat.float(), z_sym, y_sym.long().numpy())
