"""How many threads the transforms use: the NumPy layers' blocks and NumPy's BLAS (the
coding path without torch) and torch's intra-op pool (encoder effort, training), set
together. Files and pixels do not depend on the number."""

from __future__ import annotations

import os
import sys


def set_threads(threads: int) -> None:
    """Use ``threads`` threads in the transforms from now on, whichever runs them."""
    from threadpoolctl import threadpool_limits

    from ..families import numpy_layers

    numpy_layers.set_threads(threads)
    threadpool_limits(threads, user_api="blas")
    # torch, if imported later, sizes its pool from this; if already here, set it now.
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
