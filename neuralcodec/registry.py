"""Shipped and user models: finding weights, identifying them, loading them into coders.

A model is ``NAME.safetensors`` plus ``NAME.json`` (its config and model card). The
card's ``family`` names the module that knows the weights' layout and how that family
codes an image (see :class:`ModelCoder`); this module knows neither.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from .errors import AecError

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = "aec-hp-ckbd"
# Extra folders searched for models, separated like PATH (for user-trained models).
MODEL_PATH_ENV = "AEC_MODEL_PATH"

# Model family (the card's "family") -> module with ``load(info, device) -> ModelCoder``.
# Imported on first use, so listing models or reading headers stays light.
FAMILIES = {
    "hyperprior-checkerboard": "neuralcodec.hyperprior",
    "vq-vae": "neuralcodec.vq",
}


@dataclass(frozen=True)
class ModelInfo:
    name: str
    weights: Path
    card: dict

    @property
    def fingerprint(self) -> bytes:
        return weights_fingerprint(self.weights)

    @property
    def family(self) -> str:
        return self.card.get("family", "hyperprior-checkerboard")


class ModelCoder(Protocol):
    """What :class:`~neuralcodec.codec.Codec` needs from a loaded model of any family.

    Images reach it as padded float tensors (1, 3, H, W) in [0, 1], H and W multiples of
    ``pad_multiple``; it answers with named container chunks and takes them back.
    ``quality`` is the stored integer (hundredths of 0..100).
    """

    name: str
    fingerprint: bytes
    card: dict
    pad_multiple: int
    formats: tuple[int, ...]  # container versions it writes and reads

    def analyse(self, x: torch.Tensor) -> torch.Tensor:
        """Quality-independent analysis, cached by the codec across a --bpp search."""
        ...

    def compress(self, features: torch.Tensor, quality: int, version: int) -> dict[bytes, bytes]:
        ...

    def decompress_latents(
        self, chunks: Mapping[bytes, bytes], size: tuple[int, int], quality: int, version: int
    ) -> Any:
        """Entropy-decode the latents of a padded (H, W) image (family-specific type)."""
        ...

    def synthesize(self, latents: Any, quality: int) -> torch.Tensor:
        """Pixels (1, 3, H, W) in [0, 1] from decoded latents."""
        ...


def weights_fingerprint(path: Path) -> bytes:
    """First 8 bytes of the SHA-256 of the weights file: identifies exact weights."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.digest()[:8]


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
    family and config."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.safetensors"
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"name": name, "family": meta["family"]})
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    (directory / f"{name}.json").write_text(json.dumps({"name": name, **meta}, indent=2) + "\n")
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


def load_coder(name: str = DEFAULT_MODEL, device: str | torch.device = "cpu") -> ModelCoder:
    """Find a model and load it with its family's loader."""
    info = find_model(name)
    module = FAMILIES.get(info.family)
    if module is None:
        raise AecError(
            f"model '{info.name}' is of family '{info.family}', which this aec cannot run"
        )
    return importlib.import_module(module).load(info, device)
