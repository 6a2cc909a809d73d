"""Whether a device computes bfloat16 convolutions natively.

Where it does (CUDA with bf16 support; CPUs with AVX-512 BF16 or AMX), bf16 autocast of
the transforms runs much faster than float32: training and encoder effort use
it there. Elsewhere torch falls back to slow reference kernels, so float32 stays.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..cpu import cpu_flags


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 convolutions natively."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return not {"avx512_bf16", "amx_bf16"}.isdisjoint(cpu_flags())
    return False


def with_cast_convolutions(layers: nn.Sequential, dtype: torch.dtype) -> nn.Sequential:
    """A copy of ``layers`` whose convolutions' weights and biases are already ``dtype``,
    all but the last layer's (which runs outside autocast).

    Under autocast a float32 weight that needs no gradient is cast again on every call
    (only weights being trained are cached); a loop that runs the same transform many
    times (encoder effort) casts once instead. Autocast would compute the same values:
    the results are unchanged.
    """
    cast = copy.deepcopy(layers)
    for module in cast[:-1].modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            module.to(dtype)
    return cast
