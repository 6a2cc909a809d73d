"""Shipped and user models: finding weights, identifying them, loading them into coders.

A model is ``NAME.safetensors`` plus ``NAME.json`` (its config and model card). The
card's ``family`` names a registered :class:`~neuralcodec.families.base.Family`, whose
coder module knows the weights' layout and how that family codes an image; this module
knows neither, and imports no torch (listing models and reading headers stay light).
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AecError, needs_torch, torch_missing
from .base import get_family
from .shipped import file_sha256, shipped_model

if TYPE_CHECKING:
    from .base import ModelCoder

WEIGHTS_DIR = Path(__file__).parent.parent / "weights"
DEFAULT_MODEL = "aec-hp-ckbd"
# Extra folders searched for models, separated like PATH (for user-trained models).
MODEL_PATH_ENV = "AEC_MODEL_PATH"


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


def weights_fingerprint(path: Path) -> bytes:
    """First 8 bytes of the SHA-256 of the weights file: identifies exact weights."""
    return bytes.fromhex(file_sha256(path))[:8]


def _search_dirs() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get(MODEL_PATH_ENV, "").split(os.pathsep) if p]
    return dirs + [WEIGHTS_DIR]


# Families of models that code a layer of a file, not an image (the residual layer's
# probability models, neuralcodec/residual): never listed as image models.
LAYER_FAMILIES = ("residual",)


def available_models(layers: bool = False) -> list[ModelInfo]:
    """Every image model found in AEC_MODEL_PATH folders and the package's own weights
    (``layers``: the models of :data:`LAYER_FAMILIES` too)."""
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
            if not layers and card.get("family") in LAYER_FAMILIES:
                continue
            found.setdefault(card_path.stem, ModelInfo(card_path.stem, weights, card))
    return list(found.values())


def is_installed(name: str) -> bool:
    """Whether a model of this name is found (without reading its weights)."""
    return any(info.name == name for info in available_models())


def find_model(name: str, layers: bool = False) -> ModelInfo:
    path = Path(name)
    if path.suffix == ".safetensors" and path.exists():
        card_path = path.with_suffix(".json")
        if not card_path.exists():
            raise AecError(f"model config {card_path} is missing beside {path}")
        return ModelInfo(path.stem, path, json.loads(card_path.read_text()))
    for info in available_models(layers):
        if info.name == name:
            return info
    entry = shipped_model(name)
    if entry is not None:  # a shipped model this installation lacks
        raise AecError(f"model '{name}' (frozen since aec {entry.since}) is not installed; "
                       f"{entry.install_hint}")
    names = ", ".join(m.name for m in available_models()) or "none"
    raise AecError(f"model '{name}' is not installed (installed: {names})")


def load_coder(name: str = DEFAULT_MODEL, device: Any = "cpu", backend: str | None = None
               ) -> ModelCoder:
    """Find a model and load it (on ``device``) with its family's loader; ``backend``
    names where its transforms run ("numpy", "torch"; None: the family's choice for the
    device)."""
    info = find_model(name)
    family = get_family(info.family)
    if family is None:
        raise AecError(
            f"model '{info.name}' is of family '{info.family}', which this aec cannot run"
        )
    try:
        return importlib.import_module(family.coder_module).load(info, device, backend)
    except ModuleNotFoundError as exc:
        if not torch_missing(exc):
            raise
        raise needs_torch(f"model '{info.name}' (family {info.family}) on {device}") from None
