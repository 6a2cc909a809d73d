"""The models aec has shipped: frozen, each pinned to its exact weights.

A model that has shipped is never changed or removed (README, "Compatibility"): files
name their model and its weights' fingerprint, and must decode with every later release.
Better weights ship under a new name (``aec-hp-ckbd-2``, ...) with a new entry here,
which may become the default. ``tests/test_shipped.py`` recomputes every pin from the
installed files against its own copy of this table, so changing a byte of a shipped
model's weights or of the card fields that decoding reads fails the tests.

Where a model is installed from: the package itself, or (once the weights outgrow the
bound in docs/compatibility.md) the ``models`` extra, which the messages then name.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import DISTRIBUTION, install_command
from ..version import VERSION, __version__, parse_version

# Where a shipped model's files come from.
IN_PACKAGE = "package"
MODELS_EXTRA = "models"


@dataclass(frozen=True)
class ShippedModel:
    name: str
    since: str  # the aec version that first shipped it
    fingerprint: str  # hex of the first 8 bytes of the weights' SHA-256 (files record it)
    weights_sha256: str  # of NAME.safetensors
    card_sha256: str  # of the card's fields that decoding reads (card_digest)
    source: str = IN_PACKAGE  # IN_PACKAGE, or the extra that installs it

    @property
    def install_hint(self) -> str:
        """What installs it, for a message about its absence."""
        if self.source == IN_PACKAGE:
            return (f"it is part of the package: reinstall it (pip install --force-reinstall "
                    f"{DISTRIBUTION}=={__version__})")
        return f"it comes with the {self.source} extra: {install_command(self.source)}"


SHIPPED: tuple[ShippedModel, ...] = (
    ShippedModel("aec-hp-ckbd", "0.1.0", "3744217b10a0477d",
                 "3744217b10a0477d69b7d7ec7d85242c536afe21d92e2bdbddc008051d161698",
                 "424cd8aff2f77ab1bd0ae44ed5f7f9ba11b72ab9c201fce24baa622d97196194"),
    ShippedModel("aec-vq", "0.1.0", "5a3a3413efb2c7b1",
                 "5a3a3413efb2c7b1b7c52705bb0f13dfe30d32827a1fa0119a07144e5e5266bb",
                 "323058760706b71488d7ed97814565e18ba2d8715d4cf9082b8e5e0029d42db4"),
    # The residual layer's model (--lossless, --max-error): not an image model of its own.
    ShippedModel("aec-residual-1", "0.3.0", "40e6b45e8d1ccbc9",
                 "40e6b45e8d1ccbc9bdb31cce46bf6ad05a2273e62ec3f8f2bc4f791d4699e810",
                 "0fbb19be8976b1cadf884932b30d55758629bcba9e7cd9d308cb628b4973246b"),
    # No network: its weights file holds the Laplace tables every aec-of file codes with.
    ShippedModel("aec-of", "0.3.0", "f8a87c92c43f5dc1",
                 "f8a87c92c43f5dc1d39495dba7d22ba67214149da3d0e73f9663c3924b7555bf",
                 "a8932dc83c31e84c09b76cd90c43e2dca93f29e1b4b86bcbb8ce1c9d9e3b62dc"),
)


def shipped_model(name: str) -> ShippedModel | None:
    return next((m for m in SHIPPED if m.name == name), None)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def card_digest(family: str, card: dict) -> str:
    """SHA-256 of what decoding reads from a model card: its family and config (the
    weights' fingerprint does not cover them, yet they decide how a file is read)."""
    fields = {"family": family, "config": card.get("config")}
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def pins_differ(entry: ShippedModel, weights_sha256: str, family: str, card: dict
                ) -> list[str]:
    """How a model's files (the SHA-256 of its weights, its card) differ from a shipped
    model's pins, in words (empty: they are that model)."""
    problems = []
    if weights_sha256 != entry.weights_sha256:
        problems.append(f"weights are not those aec {entry.since} shipped")
    if card_digest(family, card) != entry.card_sha256:
        problems.append("card's family or config changed")
    return problems


def missing_model(name: str, fingerprint: str | None = None, needs: str | None = None,
                  shipped_by_aec: bool | None = None) -> str:
    """Why a model is not here and what brings it, in one line: ``fingerprint`` (hex)
    is the weights a file asks for; ``needs`` the lowest aec that decodes that file and
    ``shipped_by_aec`` whether its model is one aec ships, as the file records them
    (None: the file does not say: it predates 0.2.0 or is of format version 1 or 2)."""
    weights = f" (fingerprint {fingerprint})" if fingerprint else ""
    entry = shipped_model(name)
    if entry is not None and (fingerprint is None or fingerprint == entry.fingerprint):
        return (f"needs model '{name}'{weights}, frozen since aec {entry.since}, which is "
                f"not installed; {entry.install_hint}")
    if entry is not None:  # the name of a shipped model with other weights
        return (f"needs model '{name}'{weights}, but aec ships '{name}' as fingerprint "
                f"{entry.fingerprint}: the file was made with other weights under its name")
    later = needs is not None and parse_version(needs) > VERSION
    if later and shipped_by_aec:
        return (f"needs model '{name}'{weights}, which aec {__version__} does not have; it "
                f"comes with aec {needs} and later (pip install -U {DISTRIBUTION})")
    if shipped_by_aec is False:
        also = f"; the file also needs aec {needs} or later" if later else ""
        return (f"needs model '{name}'{weights}, which is not installed: not a model aec "
                f"ships (a model of your own? put its folder in $AEC_MODEL_PATH){also}")
    return (f"needs model '{name}'{weights}, which is not installed: not one aec "
            f"{__version__} ships (from a later aec, or your own in $AEC_MODEL_PATH)")
