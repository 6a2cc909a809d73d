"""Latent codec: from latents ``y`` to coded streams and back (NumPy, no torch).

It drives the *entropy-parameter path*, which decides the table index and the mean of
every latent: the hyper-latent ``z``, the hyper-synthesis, the two-pass checkerboard
context and the entropy-parameter network. Two implementations of that path exist:

* :class:`~.integer_net.IntegerParamPath` (format versions 2 and 3, the default):
  integer arithmetic, bit-exact on any machine;
* :class:`~.float_param_path.FloatParamPath` (format version 1): the same networks in
  float64 in torch, kept so that version-1 files still decode and as the reference for
  the rate cost of integerization.

Latents are channels-last arrays: ``y`` (h, w, M), ``z`` (h/4, w/4, N). Coding order in
the latent stream: anchors grouped by table index, then non-anchors grouped by table
index, each pass channel by channel in raster order; ``z`` goes in its own stream,
channel by channel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ...entropy import SymbolDecoder, SymbolEncoder, pack_varints, unpack_varints
from ...format.chunks import require_chunks
from ...stages import stage
from ..base import RatePoint
from .coding_tables import CodingTables
from .integer_net import checkerboard_anchors


class ParamPath(Protocol):
    def hyper(self, z_symbols: np.ndarray, point: RatePoint) -> np.ndarray:
        """Hyper features (h, w, C) of z's symbols (h/4, w/4, N) at a rate point,
        float64."""
        ...

    def params(self, hyper: np.ndarray, y_hat_anchor: np.ndarray | None,
               positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(table index, mean), each (P, channels), at the P ``positions`` (an (h, w)
        mask, raster order); context from decoded anchors (None: none)."""
        ...


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


def channels_first(a: np.ndarray) -> np.ndarray:
    """(h, w, C) -> (1, C, h, w), the layout the symbols are reported (and stored) in."""
    return np.ascontiguousarray(a.transpose(2, 0, 1)[None])


@dataclass
class DecodedLatents:
    y_hat: np.ndarray  # float32 (h, w, M), ready for the synthesis transform
    z_symbols: np.ndarray  # int64 (1, N, h/4, w/4), for tests and diagnostics
    y_symbols: np.ndarray  # int64 (1, M, h, w)


class LatentCodec:
    def __init__(self, path: ParamPath, tables: CodingTables):
        self.path = path
        self.z_medians = tables.z_medians
        self.z_tables = tables.z
        self.y_tables = tables.y

    @staticmethod
    def _z_table_index(shape: tuple[int, ...]) -> np.ndarray:
        h, w, c = shape  # channel by channel: table c for channel c
        return np.repeat(np.arange(c), h * w)

    def z_symbols(self, z: np.ndarray) -> np.ndarray:
        """The hyper-latent ``z`` (h, w, N) as coded: round(z - median), float64."""
        return np.round(np.asarray(z, dtype=np.float64) - self.z_medians)

    def _encode_hyper(self, z_sym: np.ndarray, point: RatePoint
                      ) -> tuple[SymbolEncoder, np.ndarray]:
        """The encoder of z's symbols and the hyper features."""
        enc_z = SymbolEncoder()
        enc_z.encode(z_sym.transpose(2, 0, 1).astype(np.int64).ravel(),
                     self._z_table_index(z_sym.shape), self.z_tables)
        with stage("entropy parameters"):
            hyper = self.path.hyper(z_sym, point)
        return enc_z, hyper

    def _encode_part(self, enc_y: SymbolEncoder, sym: np.ndarray, idx: np.ndarray) -> None:
        """Code a pass's symbols (P, C) with their table indices: channel by channel,
        positions in raster order."""
        enc_y.encode(sym.T.astype(np.int64).ravel(), idx.T.ravel(), self.y_tables)

    def _decode_part(self, dec_y: SymbolDecoder, idx: np.ndarray) -> np.ndarray:
        """A pass's symbols (P, C), read in :meth:`_encode_part`'s order."""
        return dec_y.decode(idx.T.ravel(), self.y_tables).reshape(idx.shape[::-1]).T

    @staticmethod
    def _finish(enc_z: SymbolEncoder, enc_y: SymbolEncoder, z_sym: np.ndarray,
                y_hat: np.ndarray, y_sym: np.ndarray) -> tuple[LatentStreams, DecodedLatents]:
        z_bytes, z_esc = enc_z.finish()
        y_bytes, y_esc = enc_y.finish()
        streams = LatentStreams(z_bytes, y_bytes, pack_varints(z_esc + y_esc))
        return streams, decoded_latents(z_sym, y_hat, y_sym)

    def _decode_hyper(self, streams: LatentStreams, latent_hw: tuple[int, int], n: int,
                      point: RatePoint) -> tuple[list[int], np.ndarray, np.ndarray]:
        """The escapes, z's symbols (h/4, w/4, n) and the hyper features of coded
        streams."""
        h, w = latent_hw  # multiples of 4: images are padded to multiples of 64
        escapes = unpack_varints(streams.escapes)
        z_shape = (h // 4, w // 4, n)
        z_dec = SymbolDecoder(streams.z, escapes)
        z_sym = z_dec.decode(self._z_table_index(z_shape), self.z_tables)
        z_sym = z_sym.reshape(n, h // 4, w // 4).transpose(1, 2, 0).astype(np.float64)
        with stage("entropy parameters"):
            hyper = self.path.hyper(z_sym, point)
        return escapes, z_sym, hyper

    def compress(self, y: np.ndarray, point: RatePoint, z_sym: np.ndarray
                 ) -> tuple[LatentStreams, DecodedLatents]:
        """``y``: float latents (h, w, M) at rate ``point``; ``z_sym``: its
        hyper-latent's symbols (see :meth:`z_symbols`)."""
        enc_z, hyper = self._encode_hyper(z_sym, point)
        y = np.asarray(y, dtype=np.float64)
        anchor = checkerboard_anchors(*y.shape[:2])
        enc_y = SymbolEncoder()
        y_sym = np.zeros_like(y)
        y_hat = np.zeros_like(y)
        for part in (anchor, ~anchor):  # symbols of a part: channel by channel, raster
            with stage("entropy parameters"):
                idx, means = self.path.params(hyper, None if part is anchor else y_hat, part)
            sym = np.round(y[part] - means)
            self._encode_part(enc_y, sym, idx)
            y_sym[part] = sym
            y_hat[part] = sym + means
        return self._finish(enc_z, enc_y, z_sym, y_hat, y_sym)

    def decompress(self, streams: LatentStreams, latent_hw: tuple[int, int],
                   channels: tuple[int, int], point: RatePoint) -> DecodedLatents:
        """The latents of coded streams at rate ``point``: ``latent_hw`` the latents'
        (h, w), ``channels`` (N, M) those of z and y."""
        h, w = latent_hw
        n, m = channels
        escapes, z_sym, hyper = self._decode_hyper(streams, latent_hw, n, point)
        anchor = checkerboard_anchors(h, w)
        dec_y = SymbolDecoder(streams.y, escapes)
        y_sym = np.zeros((h, w, m))
        y_hat = np.zeros((h, w, m))
        for part in (anchor, ~anchor):
            with stage("entropy parameters"):
                idx, means = self.path.params(hyper, None if part is anchor else y_hat, part)
            sym = self._decode_part(dec_y, idx)
            y_sym[part] = sym
            y_hat[part] = sym + means
        return decoded_latents(z_sym, y_hat, y_sym)


def decoded_latents(z_sym: np.ndarray, y_hat: np.ndarray, y_sym: np.ndarray
                    ) -> DecodedLatents:
    return DecodedLatents(y_hat.astype(np.float32), channels_first(z_sym).astype(np.int64),
                          channels_first(y_sym).astype(np.int64))
