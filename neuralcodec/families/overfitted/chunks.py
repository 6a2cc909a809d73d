"""The overfitted family's two chunks per tile (no torch; layout in docs/bitstream.md):

    OFPR  parameter groups' step bits (1 byte each), tensors' scale buckets (1 byte each),
          the fit's iterations (uint32) and lambda (float32), the parameter stream's
          length (uint32), the stream, its escapes (varints to the end)
    OFLT  the latent stream's length (uint32), the stream, its escapes (to the end)

Integers are little-endian. Iterations and lambda record how the file was made (``aec
info``); decoding does not read them.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ...errors import CorruptFileError
from . import CHUNK_LATENTS, CHUNK_PARAMETERS
from .architecture import DEFAULT, OverfitArchitecture
from .coding import CodedModel

_LENGTH = struct.Struct("<I")
_FIT = struct.Struct("<If")  # iterations, lambda


@dataclass(frozen=True)
class FitRecord:
    iterations: int
    lmbda: float


def pack_chunks(coded: CodedModel, record: FitRecord) -> dict[bytes, bytes]:
    return {CHUNK_PARAMETERS: coded.steps + coded.buckets
            + _FIT.pack(record.iterations, record.lmbda)
            + _LENGTH.pack(len(coded.parameters)) + coded.parameters + coded.parameter_escapes,
            CHUNK_LATENTS: _LENGTH.pack(len(coded.latents)) + coded.latents
            + coded.latent_escapes}


def _split(payload: bytes, head: int, tag: bytes) -> tuple[bytes, bytes, bytes]:
    """(the first ``head`` bytes, the stream, the escapes) of a chunk."""
    if len(payload) < head + _LENGTH.size:
        raise CorruptFileError(f"chunk {tag.decode()} is truncated")
    (length,) = _LENGTH.unpack_from(payload, head)
    start = head + _LENGTH.size
    if length > len(payload) - start:
        raise CorruptFileError(f"chunk {tag.decode()} is damaged (its stream's length)")
    return payload[:head], payload[start:start + length], payload[start + length:]


def _head_sizes(arch: OverfitArchitecture) -> tuple[int, int]:
    return len(arch.parameter_groups), len(arch.parameter_layout())


def unpack_chunks(chunks: Mapping[bytes, bytes], arch: OverfitArchitecture = DEFAULT
                  ) -> tuple[CodedModel, FitRecord]:
    groups, tensors = _head_sizes(arch)
    head, parameters, p_escapes = _split(chunks[CHUNK_PARAMETERS],
                                         groups + tensors + _FIT.size, CHUNK_PARAMETERS)
    _, latents, l_escapes = _split(chunks[CHUNK_LATENTS], 0, CHUNK_LATENTS)
    record = FitRecord(*_FIT.unpack_from(head, groups + tensors))
    coded = CodedModel(head[:groups], head[groups:groups + tensors], parameters, p_escapes,
                       latents, l_escapes)
    return coded, record


def facts(tiles: Sequence[Mapping[bytes, bytes]]) -> dict:
    """What ``aec info`` shows of an overfitted file: how it was fitted (the first tile's
    record; every tile is fitted alike) and its bytes of parameters and of latents."""
    if not tiles or not all(CHUNK_PARAMETERS in t and CHUNK_LATENTS in t for t in tiles):
        return {}
    try:
        coded, record = unpack_chunks(tiles[0])
    except CorruptFileError:
        return {}
    return {"fit_iterations": record.iterations,
            "fit_lambda": float(f"{record.lmbda:.6g}"),
            "step_bits": dict(zip(DEFAULT.parameter_groups, coded.steps, strict=False)),
            "parameter_bytes": sum(len(t[CHUNK_PARAMETERS]) for t in tiles),
            "latent_bytes": sum(len(t[CHUNK_LATENTS]) for t in tiles)}
