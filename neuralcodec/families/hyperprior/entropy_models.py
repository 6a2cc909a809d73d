"""Stand-ins for the entropy models in a coding-only torch model: the same buffer names
as CompressAI's (weights load unchanged), none of the training-time parameters, and no
CompressAI import; and the :class:`~.tables.CodingTables` of either kind."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .coding_tables import Y_MODEL, Z_MODEL, CodingTables


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


def coding_tables(factorized: nn.Module, gaussian: nn.Module) -> CodingTables:
    """The tables of either kind of entropy models (trainable or stored)."""
    buffers = {}
    for prefix, module in ((Z_MODEL, factorized), (Y_MODEL, gaussian)):
        for name in ("_quantized_cdf", "_cdf_length", "_offset", "quantiles", "scale_table"):
            value = getattr(module, name, None)
            if isinstance(value, Tensor):
                buffers[f"{prefix}.{name}"] = value.detach().cpu().double().numpy() if (
                    value.is_floating_point()) else value.cpu().numpy()
    return CodingTables.from_state(buffers)
