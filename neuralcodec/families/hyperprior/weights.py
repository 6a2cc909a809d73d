"""The hyperprior family's weights file: what is stored, in which form.

The transforms' kernels are stored in float16 to keep each file under 16 MiB; the
parameter path's kernels as the integers its exact integer network uses (int16 plus a
power-of-two shift per layer, ``<layer>.weight_shift``); entropy tables, GDN, biases and
gains stay float32. Export rounds the weights first and builds the coding tables from
the rounded model, so tables and weights agree.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from ...errors import AecError
from ..weights import load_state, storage_state, stored_dtype, write_model_files
from ..zoo import ModelInfo
from . import FAMILY
from .integer_net import PARAM_PATH, integer_gains, param_path_convs, weight_shift
from .model import HyperpriorCheckerboard, ModelConfig

_HALF_PREFIXES = ("g_a.", "g_s.", "h_a.")
SHIFT_SUFFIX = ".weight_shift"
INTEGER_GAINS = "integer.gain_z_inv"  # int64 (levels, N): exp() done once, here


def round_to_storage(model: HyperpriorCheckerboard, path: tuple[str, ...] = PARAM_PATH
                     ) -> dict[str, int]:
    """Round parameters to what is stored (float16, or the integer grid of the parameter
    path, the sub-networks named by ``path``), in place; returns the parameter path's
    weight shifts."""
    shifts = {}
    with torch.no_grad():
        for name, m in param_path_convs(model, path).items():
            shifts[name] = s = weight_shift(m.weight)
            m.weight.copy_(torch.round(m.weight.double() * 2.0**s) * 2.0**-s)
        for name, p in model.named_parameters():
            if stored_dtype(name, p, _HALF_PREFIXES) == torch.float16:
                p.copy_(p.to(torch.float16).to(p.dtype))
    return shifts


def save_model(model: HyperpriorCheckerboard, directory: Path, name: str, card: dict,
               family: str = FAMILY.name, path: tuple[str, ...] = PARAM_PATH) -> Path:
    """Write ``name.safetensors`` and ``name.json`` (config + model card) to ``directory``.

    The model's coding tables are rebuilt from the storage-rounded weights first.
    ``family`` and ``path`` (its parameter path's sub-networks) serve the families built
    on this one's transforms.
    """
    model = model.cpu().float().eval()
    shifts = round_to_storage(model, path)
    model.update_tables()
    tensors = storage_state(model, _HALF_PREFIXES)
    for layer, s in shifts.items():
        w = tensors[f"{layer}.weight"].double() * 2.0**s
        tensors[f"{layer}.weight"] = w.round().to(torch.int16)
        tensors[layer + SHIFT_SUFFIX] = torch.tensor([s], dtype=torch.int32)
    tensors[INTEGER_GAINS] = integer_gains(model.gain_z_inv.log_gain)
    meta = {"family": family, "config": model.config.to_dict(), **card}
    return write_model_files(tensors, Path(directory), name, meta)


def read_state(info: ModelInfo) -> tuple[dict[str, Tensor], dict[str, int], Tensor | None]:
    """A weights file's state dict (the parameter path's integer kernels back to floats,
    exactly), the parameter path's weight shifts and the integer gains (None if absent)."""
    from safetensors.torch import load_file

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
            v = v.double() * 2.0 ** -shifts[layer]  # exact: |w_int| <= 2**14
        state[k] = v
    return state, shifts, gains


def read_model(info: ModelInfo) -> tuple[HyperpriorCheckerboard, dict[str, int], Tensor]:
    """The coding model of a weights file (float32, on the CPU), its parameter path's
    weight shifts and its integer gains."""
    state, shifts, gains = read_state(info)
    if gains is None:
        raise AecError(f"model '{info.name}': weights file lacks {INTEGER_GAINS}")
    model = HyperpriorCheckerboard(ModelConfig.from_dict(info.card["config"]))
    load_state(model, state, info)
    return model, shifts, gains
