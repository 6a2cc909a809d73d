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
from ..model_files import load_state, storage_state, stored_dtype, write_model_files
from ..zoo import ModelInfo
from . import FAMILY
from .integer_net import GAIN_BITS, PARAM_PATH, weight_shift
from .model import HyperpriorCheckerboard, ModelConfig
from .stored_arrays import INTEGER_GAINS, SHIFT_SUFFIX, read_arrays

_HALF_PREFIXES = ("g_a.", "g_s.", "h_a.")


def param_path_convs(model: torch.nn.Module, path: tuple[str, ...] = PARAM_PATH
                     ) -> dict[str, torch.nn.Module]:
    """Every convolution of the parameter path (the sub-networks named by ``path``), by
    state-dict prefix (e.g. 'h_s.0')."""
    convs = {}
    for name, m in model.named_modules():
        if name.split(".")[0] in path and isinstance(m, (torch.nn.Conv2d,
                                                         torch.nn.ConvTranspose2d)):
            convs[name] = m
    return convs


def integer_gains(log_gain: Tensor) -> Tensor:
    """(levels, C) int64 gains on a 2**-GAIN_BITS grid: the one float step, done at export."""
    return torch.round(log_gain.detach().double().exp() * 2**GAIN_BITS).to(torch.int64)


def round_to_storage(model: HyperpriorCheckerboard, path: tuple[str, ...] = PARAM_PATH
                     ) -> dict[str, int]:
    """Round parameters to what is stored (float16, or the integer grid of the parameter
    path, the sub-networks named by ``path``), in place; returns the parameter path's
    weight shifts."""
    shifts = {}
    with torch.no_grad():
        for name, m in param_path_convs(model, path).items():
            shifts[name] = s = weight_shift(m.weight.detach().cpu().double().numpy())
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


def read_state(info: ModelInfo, arrays: tuple | None = None
               ) -> tuple[dict[str, Tensor], dict[str, int], Tensor | None]:
    """A weights file's state dict (the parameter path's integer kernels back to floats,
    exactly), the parameter path's weight shifts and the integer gains (None if absent);
    ``arrays``: the file as :func:`read_arrays` gave it, where already read."""
    state, shifts, gains = arrays if arrays is not None else read_arrays(info)
    return ({k: torch.from_numpy(v) for k, v in state.items()}, shifts,
            None if gains is None else torch.from_numpy(gains))


def read_model(info: ModelInfo, arrays: tuple | None = None
               ) -> tuple[HyperpriorCheckerboard, dict[str, int], Tensor]:
    """The coding model of a weights file (float32, on the CPU), its parameter path's
    weight shifts and its integer gains; ``arrays``: the file as :func:`read_arrays` gave
    it, where the caller has read it already."""
    state, shifts, gains = read_state(info, arrays)
    if gains is None:
        raise AecError(f"model '{info.name}': weights file lacks {INTEGER_GAINS}")
    model = HyperpriorCheckerboard(ModelConfig.from_dict(info.card["config"]))
    load_state(model, state, info)
    return model, shifts, gains
