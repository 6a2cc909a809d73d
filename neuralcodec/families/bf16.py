"""Whether a device computes bfloat16 convolutions natively.

Where it does (CUDA with bf16 support; CPUs with AVX-512 BF16 or AMX), bf16 autocast of
the transforms runs much faster than float32: training and encoder effort use
it there. Elsewhere torch falls back to slow reference kernels, so float32 stays.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch


@cache
def _cpu_flags() -> frozenset[str]:
    try:  # Linux; elsewhere no flags are known and float32 stays
        return frozenset(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return frozenset()


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 convolutions natively."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return not {"avx512_bf16", "amx_bf16"}.isdisjoint(_cpu_flags())
    return False
