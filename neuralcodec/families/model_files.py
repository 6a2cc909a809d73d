"""Weights files: the stored dtypes, writing a model's files, loading stored tensors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..errors import AecError
from .shipped import shipped_model
from .zoo import ModelInfo


def stored_dtype(name: str, tensor: torch.Tensor, half_prefixes: tuple[str, ...]) -> torch.dtype:
    """The dtype a parameter is stored in: float16 for the kernels of the modules named by
    ``half_prefixes`` (the large transforms: keeps files under 16 MiB), else its own."""
    if tensor.is_floating_point() and name.startswith(half_prefixes) and name.endswith(".weight"):
        return torch.float16
    return tensor.dtype


def storage_state(model: torch.nn.Module, half_prefixes: tuple[str, ...]) -> dict:
    """The model's state dict in its stored dtypes, ready for safetensors."""
    return {k: v.detach().to(stored_dtype(k, v, half_prefixes)).contiguous()
            for k, v in model.state_dict().items()}


def load_state(model: torch.nn.Module, state: dict[str, torch.Tensor], info: ModelInfo) -> None:
    """Load stored tensors (float ones back to float32) into ``model``, or fail naming it."""
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError) as exc:
        raise AecError(f"model '{info.name}': weights do not match its config ({exc})") from None


def write_model_files(
    tensors: dict[str, torch.Tensor], directory: Path, name: str, meta: dict
) -> Path:
    """Write ``name.safetensors`` (atomically) and ``name.json``; ``meta`` must hold the
    family and config. A shipped model's name is refused: its weights are frozen, and
    files under that name elsewhere would shadow them (``$AEC_MODEL_PATH``)."""
    from safetensors.torch import save_file

    entry = shipped_model(name)
    if entry is not None:
        raise AecError(f"model '{name}' has shipped (frozen since aec {entry.since}): new "
                       f"weights need a new name, such as '{name}-2'", field="name")

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.safetensors"
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"name": name, "family": meta["family"]})
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    (directory / f"{name}.json").write_text(json.dumps({"name": name, **meta}, indent=2) + "\n")
    return path
