"""Latent codec of the channel-context family: from latents ``y`` to coded streams and back.

``z`` is coded as in the hyperprior (its own stream, channel by channel). The latent
stream holds, for each channel group in order, its anchors then its non-anchors, each
pass grouped by table index (see docs/bitstream.md). Every table index, mean and LRP
correction comes from the exact :class:`~.integer_net.IntegerChannelPath`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...entropy import SymbolDecoder, SymbolEncoder
from ...stages import stage
from ..hyperprior.latent_codec import PARAM_DTYPE, DecodedLatents, LatentCodec, LatentStreams
from ..hyperprior.model import checkerboard_anchor_mask
from .integer_net import IntegerChannelPath
from .model import ChannelCheckerboard


class ChannelLatentCodec(LatentCodec):
    """The hyperprior's latent codec (``z``, tables) with channel groups for ``y``."""

    model: ChannelCheckerboard
    path: IntegerChannelPath

    def _groups(self, hyper: Tensor, y_shape: tuple[int, ...], code_group):
        """Run the groups in coding order. ``code_group(k, part, idx, means)`` codes (or
        decodes) the symbols of group k at the positions ``part`` and returns them (g, P);
        returns (ŷ after LRP, symbols), float64 (1, M, h, w)."""
        path, offsets = self.path, self.model.config.offsets
        _, _, h, w = y_shape
        anchor = checkerboard_anchor_mask(h, w)[0, 0]
        y_hat = torch.zeros(y_shape, dtype=PARAM_DTYPE)
        y_sym = torch.zeros(y_shape, dtype=PARAM_DTYPE)
        for k in range(len(offsets) - 1):
            lo, hi = offsets[k], offsets[k + 1]
            with stage("entropy parameters"):
                cc = path.channel(k, y_hat[:, :lo] if k else None)
            group = torch.zeros((1, hi - lo, h, w), dtype=PARAM_DTYPE)
            means_k = torch.zeros_like(group)
            for part in (anchor, ~anchor):
                with stage("entropy parameters"):
                    idx, means = path.params(k, hyper, cc, None if part is anchor else group,
                                             part)
                sym = code_group(k, part, idx, means)
                y_sym[0, lo:hi][:, part] = sym
                group[0][:, part] = sym + means
                means_k[0][:, part] = means
            with stage("entropy parameters"):
                y_hat[:, lo:hi] = group + path.residual(k, means_k, cc, group)
        return y_hat, y_sym

    @torch.no_grad()
    def compress(self, y: Tensor, quality: int, z_sym: Tensor | None = None
                 ) -> tuple[LatentStreams, DecodedLatents]:
        """``y``: float latents (1, M, h, w) from the analysis transform at ``quality``
        (stored integer, hundredths)."""
        z_sym, enc_z, hyper = self._encode_hyper(y, quality, z_sym)

        y = y.to("cpu", PARAM_DTYPE)
        offsets = self.model.config.offsets
        enc_y = SymbolEncoder()

        def encode(k: int, part: Tensor, idx: Tensor, means: Tensor) -> Tensor:
            sym = torch.round(y[0, offsets[k]:offsets[k + 1]][:, part] - means)
            enc_y.encode(sym.long().numpy(), idx.numpy(), self.y_tables)
            return sym

        y_hat, y_sym = self._groups(hyper, tuple(y.shape), encode)
        return self._finish(enc_z, enc_y, z_sym, y_hat, y_sym)

    @torch.no_grad()
    def decompress(
        self, streams: LatentStreams, latent_hw: tuple[int, int], quality: int
    ) -> DecodedLatents:
        h, w = latent_hw
        m = self.model.config.M
        escapes, z_sym, hyper = self._decode_hyper(streams, latent_hw, quality)
        dec_y = SymbolDecoder(streams.y, escapes)

        def decode(k: int, part: Tensor, idx: Tensor, means: Tensor) -> Tensor:
            sym = dec_y.decode(idx.numpy(), self.y_tables)
            return torch.from_numpy(sym).to(PARAM_DTYPE).view(means.shape)

        y_hat, y_sym = self._groups(hyper, (1, m, h, w), decode)
        return DecodedLatents(y_hat.float(), z_sym, y_sym.long().numpy())
