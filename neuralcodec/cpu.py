"""What the CPU is and offers (its name, its feature flags), naming OpenBLAS's kernels by
them, and what NumPy's BLAS runs as (for benchmark reports).

NumPy below 2.0 (which compressai pins) bundles OpenBLAS 0.3.23. It does not recognise
CPUs released after it (Intel's Emerald Rapids, for one) and then falls back to its
generic SSE3 kernels on a single thread: matrix products, and with them the coding
path's transforms, run about 7x slower. OpenBLAS reads ``OPENBLAS_CORETYPE`` when NumPy
loads it, so the package names the kernel family the CPU's flags support before NumPy
is imported.
"""

from __future__ import annotations

import os
import platform
import sys
from functools import cache
from pathlib import Path

_AVX512 = frozenset({"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"})
_AVX2 = frozenset({"avx2", "fma"})


@cache
def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux
        return ""


@cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux); elsewhere none are known."""
    return frozenset(_cpuinfo().split())


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the OS tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def cpu_model() -> str:
    """The CPU's model name where the OS tells it (Linux), else the architecture."""
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


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


def blas_description() -> str:
    """NumPy's BLAS as it runs here: library, kernels and threads (loads NumPy's BLAS)."""
    import numpy  # noqa: F401  (so that its BLAS is loaded and seen)
    from threadpoolctl import threadpool_info

    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            kernels = pool.get("architecture") or "?"
            return (f"{pool.get('internal_api')} {pool.get('version')} ({kernels} kernels), "
                    f"{pool.get('num_threads')} threads")
    return "no BLAS found"
