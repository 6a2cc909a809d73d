"""A fitted model's coded parts (NumPy, no torch): the quantized network parameters and
the latents, range-coded, with everything the decoder needs to read them. Not yet a
container chunk layout (the family is not wired); the probe counts these bytes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ...entropy import pack_varints, unpack_varints
from ...errors import CorruptFileError
from .architecture import OverfitArchitecture
from .arm_int import integer_arm
from .latent_codec import Layout, decode_latents, encode_latents
from .parameters import MAX_STEP_BITS, decode_parameters, encode_parameters

HEADER_BYTES = 4  # width and height in units of the pad multiple, 16 bits each


@dataclass
class CodedModel:
    steps: bytes  # one byte per parameter group: its step bits
    buckets: bytes  # one byte per parameter tensor: its table's scale bucket
    parameters: bytes  # range-coded parameters
    parameter_escapes: bytes
    latents: bytes  # range-coded latents
    latent_escapes: bytes

    def sizes(self) -> dict[str, int]:
        return {"header": HEADER_BYTES + len(self.steps) + len(self.buckets),
                "parameters": len(self.parameters) + len(self.parameter_escapes),
                "latents": len(self.latents) + len(self.latent_escapes)}

    @property
    def num_bytes(self) -> int:
        return sum(self.sizes().values())


def encode_model(arch: OverfitArchitecture, latents: list[np.ndarray],
                 parameters: Mapping[str, tuple[np.ndarray, int]],
                 group_steps: Mapping[str, int]) -> CodedModel:
    """``parameters``: name -> (integers, step bits); ``group_steps``: group -> bits."""
    arrays = [parameters[name][0] for name in arch.parameter_layout()]
    if list(group_steps) != arch.parameter_groups:
        raise ValueError("parameter groups out of order")
    p_stream, buckets, p_escapes = encode_parameters(arrays)
    h, w = latents[0].shape
    l_stream, l_escapes = encode_latents(Layout.build(arch, h, w), latents,
                                         integer_arm(parameters, arch.arm_hidden))
    return CodedModel(bytes(group_steps.values()), buckets, p_stream, pack_varints(p_escapes),
                      l_stream, pack_varints(l_escapes))


def decode_model_latents(arch: OverfitArchitecture, coded: CodedModel, height: int,
                         width: int) -> tuple[dict[str, tuple[np.ndarray, int]],
                                              list[np.ndarray]]:
    """The parameters (name -> (integers, step bits)) and the integer latents back."""
    layout = arch.parameter_layout()
    if len(coded.steps) != len(arch.parameter_groups) or max(coded.steps) > MAX_STEP_BITS:
        raise CorruptFileError("parameter steps are damaged")
    steps = dict(zip(arch.parameter_groups, coded.steps, strict=True))
    arrays = decode_parameters(coded.parameters, coded.buckets,
                               unpack_varints(coded.parameter_escapes),
                               [shape for shape, _ in layout.values()])
    parameters = {name: (a, steps[group]) for (name, (_, group)), a
                  in zip(layout.items(), arrays, strict=True)}
    try:
        arm = integer_arm(parameters, arch.arm_hidden)
    except ValueError as exc:  # parameters beyond the exact bounds: not from an encoder
        raise CorruptFileError(f"ARM parameters are damaged ({exc})") from None
    latents = decode_latents(Layout.build(arch, height, width), coded.latents,
                             unpack_varints(coded.latent_escapes), arm)
    return parameters, latents
