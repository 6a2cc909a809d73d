"""The entropy models' coding tables, as the coding path sees them.

Training uses CompressAI's ``EntropyBottleneck`` (for ``z``) and ``GaussianConditional``
(for ``y``); after training their integer CDF tables are built once and shipped in the
weights file. Coding needs only those tables, the medians of ``z`` and the Gaussian
scale table, so a loaded model holds these stand-ins instead: the same buffer names
(weights load unchanged), none of the training-time parameters, and no CompressAI
import.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ...entropy import TableSet

# Buffers whose sizes follow the trained distributions (resized on loading).
TABLE_BUFFERS = ("_quantized_cdf", "_offset", "_cdf_length", "scale_table")


class _StoredTables(nn.Module):
    """Holds the named buffers of an entropy model's state and ignores the rest of it."""

    def __init__(self, buffers: dict[str, Tensor]):
        super().__init__()
        for name, value in buffers.items():
            self.register_buffer(name, value)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        own = {prefix + name for name in self._buffers}
        kept = {k: v for k, v in state_dict.items() if not k.startswith(prefix) or k in own}
        super()._load_from_state_dict(kept, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def forward(self, *args, **kwargs):
        raise TypeError("a coding-only model holds fixed tables; train a model made by "
                        "neuralcodec.training.hyperprior.new_model")


class StoredFactorized(_StoredTables):
    """Coding tables of the factorized model of ``z`` (one per channel) and its medians."""

    def __init__(self, channels: int):
        super().__init__({
            "quantiles": torch.zeros(channels, 1, 3),
            "_quantized_cdf": torch.zeros(0, dtype=torch.int32),
            "_offset": torch.zeros(0, dtype=torch.int32),
            "_cdf_length": torch.zeros(0, dtype=torch.int32),
        })


class StoredGaussian(_StoredTables):
    """Coding tables of the Gaussian model of ``y`` (one per scale of the scale table)."""

    def __init__(self) -> None:
        super().__init__({
            "scale_table": torch.zeros(0),
            "_quantized_cdf": torch.zeros(0, dtype=torch.int32),
            "_offset": torch.zeros(0, dtype=torch.int32),
            "_cdf_length": torch.zeros(0, dtype=torch.int32),
        })


def _table_set(module: nn.Module) -> TableSet:
    return TableSet(
        module._quantized_cdf.cpu().numpy(),
        module._cdf_length.cpu().numpy(),
        module._offset.cpu().numpy(),
    )


@dataclass
class CodingTables:
    z: TableSet  # table c codes channel c of z
    y: TableSet  # table i codes latents whose scale is at most scale_table[i]
    z_medians: Tensor  # float64 (C, 1, 1): z is coded as round(z - median)
    scale_table: Tensor  # float64

    @classmethod
    def of(cls, factorized: nn.Module, gaussian: nn.Module) -> CodingTables:
        """The tables of either kind of entropy models (trainable or stored)."""
        if gaussian._quantized_cdf.numel() == 0:
            raise ValueError("model has no coding tables: call model.update_tables() after "
                             "training")
        return cls(
            z=_table_set(factorized),
            y=_table_set(gaussian),
            z_medians=factorized.quantiles[:, :, 1:2].detach().cpu().double(),
            scale_table=gaussian.scale_table.detach().cpu().double(),
        )
