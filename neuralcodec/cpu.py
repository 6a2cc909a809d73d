"""What the CPU offers (its feature flags), and naming OpenBLAS's kernels by them.

NumPy below 2.0 (which compressai pins) bundles OpenBLAS 0.3.23. It does not recognise
CPUs released after it (Intel's Emerald Rapids, for one) and then falls back to its
generic SSE3 kernels on a single thread: matrix products, and with them the coding
path's transforms, run about 7x slower. OpenBLAS reads ``OPENBLAS_CORETYPE`` when NumPy
loads it, so the package names the kernel family the CPU's flags support before NumPy
is imported.
"""

from __future__ import annotations

import os
import sys
from functools import cache
from pathlib import Path

_AVX512 = frozenset({"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"})
_AVX2 = frozenset({"avx2", "fma"})


@cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux); elsewhere none are known."""
    try:
        return frozenset(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return frozenset()


def name_blas_kernels() -> None:
    """Set ``OPENBLAS_CORETYPE`` from the CPU's flags, unless it is set already or NumPy
    (and with it OpenBLAS) is already loaded, where it would change nothing."""
    if "numpy" in sys.modules or "OPENBLAS_CORETYPE" in os.environ:
        return
    flags = cpu_flags()
    if _AVX512 <= flags:
        os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"
    elif _AVX2 <= flags:
        os.environ["OPENBLAS_CORETYPE"] = "Haswell"
