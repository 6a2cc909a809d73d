"""Golden files: committed .aec files of every shipped model must keep decoding to the
same latents.

A failure here means a change broke files users already have, which the compatibility
promise forbids (README, "Compatibility"): new weights ship under a new model name, with
their own golden files (``python tests/golden/make_golden.py MODEL``).
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

import pytest
import torch

from neuralcodec import Codec
from neuralcodec.families.zoo import WEIGHTS_DIR

from .golden.make_golden import UNPREFIXED, latent_checksum

GOLDEN = Path(__file__).resolve().parent / "golden"
RECORD = json.loads((GOLDEN / "golden.json").read_text())


@cache
def _codec(model: str) -> Codec:
    torch.set_num_threads(2)
    return Codec(model=model, device="cpu").load()


@pytest.mark.parametrize("name", sorted(RECORD))
def test_golden_file_decodes_to_recorded_latents(name):
    expected = RECORD[name]
    codec = _codec(expected.get("model", UNPREFIXED))
    data = (GOLDEN / name).read_bytes()
    _, latents = codec.decode_latents(data)
    assert latent_checksum(latents) == expected["latent_sha256"]
    image = codec.decode(data)
    assert list(image.size) == expected["size"] and image.mode == expected["mode"]


@pytest.mark.parametrize("name", sorted(RECORD))
def test_golden_file_is_the_one_recorded(name):
    """The committed bytes are those make_golden.py wrote (and recorded): a golden file
    replaced or damaged would otherwise go unnoticed, or be blamed on the decoder."""
    data = (GOLDEN / name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == RECORD[name]["file_sha256"]


def test_every_installed_model_has_golden_files():
    """A model that ships gets golden files in the same change."""
    covered = {entry.get("model", UNPREFIXED) for entry in RECORD.values()}
    shipped = {card.stem for card in WEIGHTS_DIR.glob("*.json")}
    assert shipped and shipped <= covered, shipped - covered
