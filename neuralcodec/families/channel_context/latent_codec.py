"""Latent codec of the channel-context family: from latents ``y`` to coded streams and back.

``z`` is coded as in the hyperprior (its own stream, channel by channel). The latent
stream holds, for each channel group in order, its anchors then its non-anchors, each
pass grouped by table index (see docs/bitstream.md). Every table index, mean and LRP
correction comes from the exact :class:`~.integer_net.IntegerChannelPath`.
"""

from __future__ import annotations

import numpy as np

from ...entropy import SymbolDecoder, SymbolEncoder
from ...stages import stage
from ..base import RatePoint
from ..hyperprior.coding_tables import CodingTables
from ..hyperprior.integer_net import checkerboard_anchors
from ..hyperprior.latent_codec import DecodedLatents, LatentCodec, LatentStreams, decoded_latents
from .integer_net import IntegerChannelPath


class ChannelLatentCodec(LatentCodec):
    """The hyperprior's latent codec (``z``, tables) with channel groups for ``y``; arrays
    channels-last as there."""

    path: IntegerChannelPath

    def __init__(self, path: IntegerChannelPath, tables: CodingTables,
                 offsets: tuple[int, ...]):
        super().__init__(path, tables)
        self.offsets = offsets  # group k holds channels offsets[k] .. offsets[k + 1] - 1

    def _groups(self, hyper: np.ndarray, y_shape: tuple[int, ...], code_group):
        """Run the groups in coding order. ``code_group(k, part, idx, means)`` codes (or
        decodes) the symbols of group k at the positions ``part`` and returns them (P, g);
        returns (ŷ after LRP, symbols), float64 (h, w, M)."""
        path, offsets = self.path, self.offsets
        h, w, _ = y_shape
        anchor = checkerboard_anchors(h, w)
        y_hat = np.zeros(y_shape)
        y_sym = np.zeros(y_shape)
        for k in range(len(offsets) - 1):
            lo, hi = offsets[k], offsets[k + 1]
            with stage("entropy parameters"):
                cc = path.channel(k, y_hat[:, :, :lo] if k else None)
            group = np.zeros((h, w, hi - lo))
            means_k = np.zeros_like(group)
            for part in (anchor, ~anchor):
                with stage("entropy parameters"):
                    idx, means = path.params(k, hyper, cc, None if part is anchor else group,
                                             part)
                sym = code_group(k, part, idx, means)
                y_sym[:, :, lo:hi][part] = sym
                group[part] = sym + means
                means_k[part] = means
            with stage("entropy parameters"):
                y_hat[:, :, lo:hi] = group + path.residual(k, means_k, cc, group)
        return y_hat, y_sym

    def compress(self, y: np.ndarray, point: RatePoint, z_sym: np.ndarray
                 ) -> tuple[LatentStreams, DecodedLatents]:
        """``y``: float latents (h, w, M) at rate ``point``; ``z_sym``: its
        hyper-latent's symbols."""
        enc_z, hyper = self._encode_hyper(z_sym, point)
        y = np.asarray(y, dtype=np.float64)
        offsets = self.offsets
        enc_y = SymbolEncoder()

        def encode(k: int, part: np.ndarray, idx: np.ndarray, means: np.ndarray
                   ) -> np.ndarray:
            sym = np.round(y[:, :, offsets[k]:offsets[k + 1]][part] - means)
            self._encode_part(enc_y, sym, idx)
            return sym

        y_hat, y_sym = self._groups(hyper, y.shape, encode)
        return self._finish(enc_z, enc_y, z_sym, y_hat, y_sym)

    def decompress(self, streams: LatentStreams, latent_hw: tuple[int, int],
                   channels: tuple[int, int], point: RatePoint) -> DecodedLatents:
        h, w = latent_hw
        n, m = channels
        escapes, z_sym, hyper = self._decode_hyper(streams, latent_hw, n, point)
        dec_y = SymbolDecoder(streams.y, escapes)

        def decode(k: int, part: np.ndarray, idx: np.ndarray, means: np.ndarray
                   ) -> np.ndarray:
            return self._decode_part(dec_y, idx)

        y_hat, y_sym = self._groups(hyper, (h, w, m), decode)
        return decoded_latents(z_sym, y_hat, y_sym)
