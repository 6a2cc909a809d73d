"""Reading a hyperprior weights file into NumPy arrays (no torch): the coding path's
loader, and the first step of the torch one (:mod:`.weights`, which also writes them).

The transforms' kernels are stored in float16, the parameter path's kernels as int16
plus a power-of-two shift per layer (``<layer>.weight_shift``), the integer gains of
``z`` as int64, everything else in float32.
"""

from __future__ import annotations

import numpy as np

from ..zoo import ModelInfo

SHIFT_SUFFIX = ".weight_shift"
INTEGER_GAINS = "integer.gain_z_inv"  # int64 (levels, N): exp() done once, at export


def read_arrays(info: ModelInfo) -> tuple[dict[str, np.ndarray], dict[str, int],
                                          np.ndarray | None]:
    """A weights file's state (the parameter path's integer kernels back to float64
    reals, exactly; other tensors as stored), the parameter path's weight shifts and the
    integer gains (None if absent)."""
    from safetensors.numpy import load_file

    stored = load_file(str(info.weights))
    shifts = {k[: -len(SHIFT_SUFFIX)]: int(v[0]) for k, v in stored.items()
              if k.endswith(SHIFT_SUFFIX)}
    gains = stored.get(INTEGER_GAINS)
    state = {}
    for k, v in stored.items():
        if k.endswith(SHIFT_SUFFIX) or k == INTEGER_GAINS:
            continue
        layer = k[: -len(".weight")]
        if k.endswith(".weight") and layer in shifts:
            v = v.astype(np.float64) * 2.0 ** -shifts[layer]  # exact: |w_int| <= 2**14
        state[k] = v
    return state, shifts, gains
