"""Shipped models: saving, finding and loading weights (safetensors + JSON config)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .errors import AecError
from .integer_net import integer_gains, param_path_convs, weight_shift
from .model import HyperpriorCheckerboard, ModelConfig

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = "aec-hp-ckbd"
# Extra folders searched for models, separated like PATH (for user-trained models).
MODEL_PATH_ENV = "AEC_MODEL_PATH"

# The transforms' kernels are stored in float16 to keep each file under 16 MiB; the
# parameter path's kernels as the integers its exact integer network uses (int16 plus a
# power-of-two shift per layer, `<layer>.weight_shift`); entropy models, GDN, biases and
# gains stay float32. Export rounds the weights first and builds the coding tables from
# the rounded model, so tables and weights agree.
_HALF_PREFIXES = ("g_a.", "g_s.", "h_a.")
SHIFT_SUFFIX = ".weight_shift"
INTEGER_GAINS = "integer.gain_z_inv"  # int64 (levels, N): exp() done once, here


@dataclass(frozen=True)
class ModelInfo:
    name: str
    weights: Path
    card: dict

    @property
    def fingerprint(self) -> bytes:
        return weights_fingerprint(self.weights)


@dataclass
class LoadedModel:
    name: str
    fingerprint: bytes
    model: HyperpriorCheckerboard
    card: dict
    weight_shifts: dict[str, int]  # parameter-path layer -> shift of its integer weights
    int_gain_z_inv: torch.Tensor


def weights_fingerprint(path: Path) -> bytes:
    """First 8 bytes of the SHA-256 of the weights file: identifies exact weights."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.digest()[:8]


def _stored_dtype(name: str, tensor: torch.Tensor) -> torch.dtype:
    if tensor.is_floating_point() and name.startswith(_HALF_PREFIXES) and name.endswith(".weight"):
        return torch.float16
    return tensor.dtype


def round_to_storage(model: HyperpriorCheckerboard) -> dict[str, int]:
    """Round parameters to what is stored (float16, or the integer grid of the parameter
    path), in place; returns the parameter path's weight shifts."""
    shifts = {}
    with torch.no_grad():
        for name, m in param_path_convs(model).items():
            shifts[name] = s = weight_shift(m.weight)
            m.weight.copy_(torch.round(m.weight.double() * 2.0**s) * 2.0**-s)
        for name, p in model.named_parameters():
            if _stored_dtype(name, p) == torch.float16:
                p.copy_(p.to(torch.float16).to(p.dtype))
    return shifts


def save_model(model: HyperpriorCheckerboard, directory: Path, name: str, card: dict) -> Path:
    """Write ``name.safetensors`` and ``name.json`` (config + model card) to ``directory``.

    The model's coding tables are rebuilt from the storage-rounded weights first.
    """
    directory.mkdir(parents=True, exist_ok=True)
    model = model.cpu().float().eval()
    shifts = round_to_storage(model)
    model.update(force=True)
    tensors = {
        k: v.detach().to(_stored_dtype(k, v)).contiguous() for k, v in model.state_dict().items()
    }
    for layer, s in shifts.items():
        w = tensors[f"{layer}.weight"].double() * 2.0**s
        tensors[f"{layer}.weight"] = w.round().to(torch.int16)
        tensors[layer + SHIFT_SUFFIX] = torch.tensor([s], dtype=torch.int32)
    tensors[INTEGER_GAINS] = integer_gains(model.gain_z_inv.log_gain)
    path = directory / f"{name}.safetensors"
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"name": name, "family": "hyperprior-checkerboard"})
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    meta = {"name": name, "family": "hyperprior-checkerboard", "config": model.config.to_dict()}
    meta.update(card)
    (directory / f"{name}.json").write_text(json.dumps(meta, indent=2) + "\n")
    return path


def _search_dirs() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get(MODEL_PATH_ENV, "").split(os.pathsep) if p]
    return dirs + [WEIGHTS_DIR]


def available_models() -> list[ModelInfo]:
    """Every model found in AEC_MODEL_PATH folders and the package's own weights."""
    found: dict[str, ModelInfo] = {}
    for d in _search_dirs():
        for card_path in sorted(d.glob("*.json")):
            weights = card_path.with_suffix(".safetensors")
            if not weights.exists():
                continue
            try:
                card = json.loads(card_path.read_text())
            except (OSError, ValueError):
                continue
            found.setdefault(card_path.stem, ModelInfo(card_path.stem, weights, card))
    return list(found.values())


def find_model(name: str) -> ModelInfo:
    path = Path(name)
    if path.suffix == ".safetensors" and path.exists():
        card_path = path.with_suffix(".json")
        if not card_path.exists():
            raise AecError(f"model config {card_path} is missing beside {path}")
        return ModelInfo(path.stem, path, json.loads(card_path.read_text()))
    for info in available_models():
        if info.name == name:
            return info
    names = ", ".join(m.name for m in available_models()) or "none"
    raise AecError(f"model '{name}' is not installed (installed: {names})")


def load_model(name: str = DEFAULT_MODEL, device: str | torch.device = "cpu") -> LoadedModel:
    info = find_model(name)
    config = ModelConfig.from_dict(info.card["config"])
    model = HyperpriorCheckerboard(config)
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
        state[k] = v.float() if v.is_floating_point() else v
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError) as exc:
        raise AecError(f"model '{info.name}': weights do not match its config ({exc})") from None
    if gains is None:
        raise AecError(f"model '{info.name}': weights file lacks {INTEGER_GAINS}")
    model.eval().to(device)
    return LoadedModel(info.name, info.fingerprint, model, info.card, shifts, gains)
