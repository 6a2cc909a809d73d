"""The allocator setting that encoder effort relies on: freed memory is kept for re-use."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# Allocate and free a 64 MiB block (above glibc's largest mmap threshold) five times and
# count the page faults: a block handed back to the kernel faults in again every time.
# (C's malloc directly, as torch's CPU allocator uses it.)
SCRIPT = """
import ctypes, resource, sys
from neuralcodec.allocator import retain_freed_memory
if sys.argv[1] == "retain":
    assert retain_freed_memory()
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
def touch():
    size = 64 * 2**20
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
touch()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    touch()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True,
                         text=True, check=True).stdout
    return int(out)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc setting")
def test_freed_memory_is_kept_for_the_next_allocation():
    plain, retained = _faults("plain"), _faults("retain")
    assert plain > 5 * 10_000  # 16,384 pages a block, faulted in again each time
    assert retained < plain / 20
