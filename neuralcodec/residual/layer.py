"""The residual layer's codec: a residual ``x - x̂`` to bytes and back, exactly.

:class:`ResidualCodec` quantizes the residual with step ``2K + 1`` (every sample within
K of the image; K = 0 is lossless) and range-codes it under the exact integer model of
:mod:`.exact`, channel-major over the 2×2 grid's phases, conditioned on ``x̂`` (the base
layer's reconstruction, which must itself be pixel-exact) and on the residuals already
decoded. Encoder and decoder compute the same table indices on every machine.

A payload is ``varint(len(stream)) stream varint(len(escapes)) escapes``: the range-coded
stream and the escape stream, nothing else (K, the quality and the model's name and
fingerprint are the container's to record). Gray images (one channel) use the R
channel's networks with the other channels' ``x̂`` equal to it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from functools import lru_cache

import numpy as np

from ..entropy import SymbolDecoder, SymbolEncoder, TableSet, pack_varints, unpack_varints
from ..errors import AecError, CorruptFileError
from .context import (
    MAX_ERROR_LIMIT,
    PAD,
    IntegerFeatures,
    Pass,
    passes,
    schedule_with,
    stored_quality,
)
from .exact import (
    BLOCK_ROWS,
    ExactPassNet,
    net_arrays,
    net_from_arrays,
    pass_key,
    quantize_net,
    scale_thresholds,
    table_choice,
)
from .model import ResidualModel
from .quantize import quantize, restore, step
from .tables import build_tables

DEFAULT_RESIDUAL_MODEL = "aec-residual-1"
RESIDUAL_FAMILY = "residual"
MODEL_CHANNELS = 3  # the networks are R's, G's and B's; gray uses R's
_NET_KEY = re.compile(r"c\d+\.p\d+\.")


def table_arrays(tables: TableSet) -> dict[str, np.ndarray]:
    """The integer CDF tables as stored arrays (flat CDFs, lengths, offsets)."""
    flat = np.concatenate([tables.cdfs[t, :tables.lengths[t]] for t in range(len(tables))])
    return {"tables.cdf": flat.astype(np.int32), "tables.length": tables.lengths.astype(np.int64),
            "tables.offset": tables.offsets.astype(np.int64)}


def coding_arrays() -> dict[str, np.ndarray]:
    """The arrays every model stores beside its networks: the CDF tables and the scale
    thresholds (computed once, with floating point, at export; stored as integers)."""
    return {**table_arrays(build_tables()), "scale_thresholds": scale_thresholds()}


def export_arrays(model: ResidualModel) -> dict[str, np.ndarray]:
    """The stored arrays of a float model's exact form (every pass network quantized, the
    column scales folded in; the tables and thresholds beside them)."""
    probe = IntegerFeatures(np.zeros((1, 1, MODEL_CHANNELS), np.uint8), model.xhat_radius)
    out = {"xhat_radius": np.array([model.xhat_radius], np.int64), **coding_arrays()}
    for p, net in model.nets.items():
        out.update(net_arrays(pass_key(p), quantize_net(net, probe.scales(p),
                                                        probe.bounds(p))))
    return out


def _tables(arrays: Mapping[str, np.ndarray]) -> TableSet:
    lengths = np.asarray(arrays["tables.length"], np.int64)
    ends = np.cumsum(lengths)
    flat = np.asarray(arrays["tables.cdf"], np.int64)
    if ends[-1] != len(flat):
        raise ValueError("the tables' lengths do not match their CDFs")
    rows = [flat[e - n:e] for e, n in zip(ends.tolist(), lengths.tolist(), strict=True)]
    return TableSet.from_rows(rows, np.asarray(arrays["tables.offset"]).tolist())


def _arrays_fingerprint(arrays: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in sorted(arrays):
        h.update(key.encode())
        h.update(np.ascontiguousarray(arrays[key]).tobytes())
    return h.hexdigest()[:16]


def _read_length(payload: bytes, pos: int) -> tuple[int, int]:
    """(an unsigned LEB128 length at ``pos``, the position after it)."""
    value, shift = 0, 0
    while True:
        if pos >= len(payload) or shift > 35:
            raise CorruptFileError("residual payload is truncated")
        byte = payload[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos


def _write_length(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


class ResidualCodec:
    """An exact residual model: per pass integer networks, the CDF tables and the scale
    thresholds. Build with :func:`load_residual_model` or :meth:`from_arrays`."""

    def __init__(self, name: str, fingerprint: str, nets: dict[Pass, ExactPassNet],
                 xhat_radius: int, tables: TableSet, thresholds: np.ndarray):
        self.name = name
        self.fingerprint = fingerprint
        self.nets = nets
        self.schedule = next(iter(nets)).schedule
        self.xhat_radius = xhat_radius
        self.tables = tables
        self.thresholds = np.asarray(thresholds, np.int64)
        self.max_error_limit = min(MAX_ERROR_LIMIT, self.thresholds.shape[0] - 1)
        # The 2**53 bound of every network, from its weights and its inputs' ranges.
        probe = IntegerFeatures(np.zeros((1, 1, MODEL_CHANNELS), np.uint8), xhat_radius)
        self.bounds_log2: dict[str, float] = {}
        for p in passes(MODEL_CHANNELS, self.schedule):
            if p not in nets:
                raise ValueError(f"residual model '{name}' lacks the network of {pass_key(p)}")
            self.bounds_log2.update(nets[p].check_bounds(probe.bounds(p), pass_key(p)))

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], name: str = "test"
                    ) -> ResidualCodec:
        """A model from its stored arrays (tables and thresholds built here if absent)."""
        arrays = dict(arrays)
        fingerprint = _arrays_fingerprint(arrays)
        for key, value in coding_arrays().items():
            arrays.setdefault(key, value)
        radius = int(np.asarray(arrays["xhat_radius"]).ravel()[0])
        keys = sorted({".".join(k.split(".")[:2]) for k in arrays if _NET_KEY.match(k)})
        schedule = schedule_with(len({k.split(".")[1] for k in keys}))
        nets = {Pass(int(k.split(".")[0][1:]), int(k.split(".")[1][1:]), schedule):
                net_from_arrays(k, arrays) for k in keys}
        return cls(name, fingerprint, nets, radius, _tables(arrays),
                   arrays["scale_thresholds"])

    def check(self, xhat: np.ndarray, max_error: int, quality: float,
              image: np.ndarray | None = None) -> None:
        """One-line errors for arguments this model cannot code."""
        for what, a in (("reconstruction", xhat), ("image", image)):
            if a is None:
                continue
            if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] not in (1, 3):
                raise AecError(f"residual layer: the {what} must be uint8 (H, W, 1 or 3), "
                               f"got {a.dtype} {a.shape}")
            if a.shape[0] < 1 or a.shape[1] < 1:
                raise AecError(f"residual layer: the {what} is empty")
        if image is not None and image.shape != xhat.shape:
            raise AecError(f"residual layer: image {image.shape} and reconstruction "
                           f"{xhat.shape} differ in shape")
        if int(max_error) != max_error or not 0 <= max_error <= self.max_error_limit:
            raise AecError(f"maximum error must be an integer from 0 to "
                           f"{self.max_error_limit}, got {max_error}", field="max_error")
        if not 0 <= quality <= 100:
            raise AecError(f"residual layer: base quality must be 0..100, got {quality}")

    def _run(self, xhat: np.ndarray, max_error: int, quality: float,
             code: Callable[[Pass, tuple[slice, slice], np.ndarray, np.ndarray], np.ndarray]
             ) -> np.ndarray:
        """Every pass in order: its table choices, then ``code`` gives the pass's symbols
        (P,) (known ones, or decoded); returns all symbols (H, W, C) int32."""
        delta = step(int(max_error))
        shape = xhat.shape[:2]
        model_xhat = xhat if xhat.shape[2] == MODEL_CHANNELS else np.repeat(
            xhat[..., :1], MODEL_CHANNELS, axis=2)
        features = IntegerFeatures(model_xhat, self.xhat_radius)
        symbols = np.zeros(xhat.shape, np.int32)
        # The residuals in levels, padded once for the contexts' neighbourhoods.
        padded = np.zeros((shape[0] + 2 * PAD, shape[1] + 2 * PAD, xhat.shape[2]), np.int32)
        decoded = padded[PAD:PAD + shape[0], PAD:PAD + shape[1]]
        thresholds = self.thresholds[int(max_error)]
        globals_ = (stored_quality(quality), delta)
        for p in passes(xhat.shape[2], self.schedule):
            net = self.nets[p]
            where = p.positions(shape)
            if symbols[where + (p.channel,)].size == 0:  # a 1-pixel row or column
                continue
            views = features.pass_views(p, padded, padded=True)
            bias0 = net.bias_with_globals(globals_)
            height, width = views.centre.shape
            out = np.empty((height * width, 2))
            step_rows = max(1, BLOCK_ROWS // width)  # pass rows per block: in the cache
            for top in range(0, height, step_rows):
                block = slice(top, min(top + step_rows, height))
                out[top * width:block.stop * width] = net(views.rows(block, np.float64), bias0)
            base, index = table_choice(out, delta, thresholds)
            q = code(p, where, base, index).reshape(symbols[where + (p.channel,)].shape)
            symbols[where + (p.channel,)] = q
            decoded[where + (p.channel,)] = q * delta
        return symbols

    def encode(self, image: np.ndarray, xhat: np.ndarray, max_error: int, quality: float
               ) -> bytes:
        """The payload of ``image``'s residual over ``xhat`` (both uint8 (H, W, C)) for
        maximum error ``max_error`` and the base layer's ``quality`` (as the file stores
        it: the decoder must pass the same)."""
        self.check(xhat, max_error, quality, image)
        symbols = quantize(image.astype(np.int32) - xhat.astype(np.int32), int(max_error))
        coder = SymbolEncoder()

        def code(p: Pass, where: tuple[slice, slice], base: np.ndarray, index: np.ndarray
                 ) -> np.ndarray:
            q = symbols[where + (p.channel,)].ravel()
            coder.encode(q - base, index, self.tables)
            return q

        self._run(xhat, max_error, quality, code)
        stream, escapes = coder.finish()
        packed = pack_varints(escapes)
        return _write_length(len(stream)) + stream + _write_length(len(packed)) + packed

    def decode(self, payload: bytes, xhat: np.ndarray, max_error: int, quality: float
               ) -> np.ndarray:
        """The image (uint8, ``xhat``'s shape) that :meth:`encode` coded: every sample
        within ``max_error`` of it. A damaged payload raises :class:`CorruptFileError`."""
        self.check(xhat, max_error, quality)
        payload = bytes(payload)
        n, pos = _read_length(payload, 0)
        stream, pos = payload[pos:pos + n], pos + n
        m, pos = _read_length(payload, pos)
        escape_bytes = payload[pos:pos + m]
        if len(stream) != n or len(escape_bytes) != m or pos + m != len(payload):
            raise CorruptFileError("residual payload's lengths do not match its size")
        escapes = unpack_varints(escape_bytes)
        coder = SymbolDecoder(stream, escapes)
        delta = step(int(max_error))
        limit = (255 + int(max_error)) // delta  # the largest |symbol| of any residual

        def code(p: Pass, where: tuple[slice, slice], base: np.ndarray, index: np.ndarray
                 ) -> np.ndarray:
            q = coder.decode(index, self.tables) + base
            if len(q) and np.abs(q).max() > limit:
                raise CorruptFileError("residual payload is damaged (a residual beyond "
                                       "the sample range)")
            return q

        symbols = self._run(xhat, max_error, quality, code)
        if next(escapes, None) is not None:
            raise CorruptFileError("residual payload is damaged (unused escapes)")
        return restore(xhat, symbols, int(max_error))


@lru_cache(maxsize=4)
def load_residual_model(name: str = DEFAULT_RESIDUAL_MODEL) -> ResidualCodec:
    """The installed residual model ``name`` (cached)."""
    from safetensors.numpy import load_file

    from ..families.shipped import file_sha256
    from ..families.zoo import available_models

    found = [m for m in available_models(layers=True) if m.family == RESIDUAL_FAMILY]
    info = next((m for m in found if m.name == name), None)
    if info is None:
        names = ", ".join(m.name for m in found) or "none"
        raise AecError(f"residual model '{name}' is not installed (installed: {names})")
    try:
        codec = ResidualCodec.from_arrays(load_file(str(info.weights)), name)
    except (ValueError, KeyError, OSError) as exc:
        raise AecError(f"residual model '{name}' cannot be loaded: {exc}") from None
    codec.fingerprint = file_sha256(info.weights)[:16]
    return codec
