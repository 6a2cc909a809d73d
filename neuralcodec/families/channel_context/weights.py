"""The channel-context family's weights file: the hyperprior's layout (transform kernels
in float16; the parameter path's kernels as int16 plus a per-layer shift; the integer
gains of ``z``) with this family's parameter path and name."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from ...errors import AecError
from ..hyperprior import weights as hyperprior_weights
from ..hyperprior.weights import INTEGER_GAINS, read_state
from ..model_files import load_state
from ..zoo import ModelInfo
from . import FAMILY
from .model import ChannelCheckerboard, ChannelConfig


def save_model(model: ChannelCheckerboard, directory: Path, name: str, card: dict) -> Path:
    """Write ``name.safetensors`` and ``name.json`` (config + model card) to ``directory``;
    the coding tables are rebuilt from the storage-rounded weights first."""
    return hyperprior_weights.save_model(model, directory, name, card, family=FAMILY.name,
                                         path=ChannelCheckerboard.PARAM_PATH)


def read_model(info: ModelInfo, arrays: tuple | None = None
               ) -> tuple[ChannelCheckerboard, dict[str, int], Tensor]:
    """The coding model of a weights file (float32, on the CPU), its parameter path's
    weight shifts and its integer gains; ``arrays``: the file as :func:`read_arrays` gave
    it, where the caller has read it already."""
    state, shifts, gains = read_state(info, arrays)
    if gains is None:
        raise AecError(f"model '{info.name}': weights file lacks {INTEGER_GAINS}")
    try:
        config = ChannelConfig.from_dict(info.card["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise AecError(f"model '{info.name}': bad config in its card ({exc})") from None
    model = ChannelCheckerboard(config)
    load_state(model, state, info)
    return model, shifts, gains
