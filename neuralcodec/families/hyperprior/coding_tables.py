"""The entropy models' coding tables, as the coding path sees them (no torch).

Training uses CompressAI's ``EntropyBottleneck`` (for ``z``) and ``GaussianConditional``
(for ``y``); after training their integer CDF tables are built once and shipped in the
weights file. Coding needs only those tables, the medians of ``z`` and the Gaussian
scale table: :class:`CodingTables`, read from a weights file's tensors or from the
entropy models of a torch model (:mod:`.entropy_models`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ...entropy import TableSet

# Buffers whose sizes follow the trained distributions (resized on loading).
TABLE_BUFFERS = ("_quantized_cdf", "_offset", "_cdf_length", "scale_table")
Z_MODEL, Y_MODEL = "entropy_bottleneck", "gaussian_conditional"  # their state-dict prefixes


def table_set(buffers: Mapping[str, np.ndarray], prefix: str) -> TableSet:
    """The CDF tables stored under ``prefix`` (an entropy model's state-dict name)."""
    return TableSet(*(np.asarray(buffers[f"{prefix}.{name}"])
                      for name in ("_quantized_cdf", "_cdf_length", "_offset")))


@dataclass
class CodingTables:
    z: TableSet  # table c codes channel c of z
    y: TableSet  # table i codes latents whose scale is at most scale_table[i]
    z_medians: np.ndarray  # float64 (C,): z is coded as round(z - median)
    scale_table: np.ndarray  # float64

    @classmethod
    def from_state(cls, state: Mapping[str, np.ndarray]) -> CodingTables:
        """The tables in a model's state (arrays by state-dict name)."""
        if np.asarray(state[f"{Y_MODEL}._quantized_cdf"]).size == 0:
            raise ValueError("model has no coding tables: call model.update_tables() after "
                             "training")
        quantiles = np.asarray(state[f"{Z_MODEL}.quantiles"], dtype=np.float64)
        return cls(
            z=table_set(state, Z_MODEL),
            y=table_set(state, Y_MODEL),
            z_medians=quantiles[:, 0, 1].copy(),
            scale_table=np.asarray(state[f"{Y_MODEL}.scale_table"], dtype=np.float64),
        )
