"""Golden files: committed .aec files of every shipped model must keep decoding to the
same latents and pixels.

A failure here means a change broke files users already have, which the compatibility
promise forbids (README, "Compatibility"): new weights ship under a new model name, with
their own golden files (``python tests/golden/make_golden.py MODEL``).
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from neuralcodec import Codec
from neuralcodec.families.base import get_family
from neuralcodec.families.zoo import WEIGHTS_DIR, find_model
from neuralcodec.residual.layer import RESIDUAL_FAMILY

from .golden import make_residual_golden as RESIDUAL_GOLDEN
from .golden.make_golden import (
    CASES,
    PIXELS,
    UNPREFIXED,
    decoded_latents,
    golden_name,
    latent_checksum,
    pixel_checksum,
    writable,
)

GOLDEN = Path(__file__).resolve().parent / "golden"
RECORD = json.loads((GOLDEN / "golden.json").read_text())
# Latents decode exactly everywhere; the pixels come from the float synthesis transform,
# which may round differently with another backend, thread count or CPU: at most one
# level of 255 (measured by benchmarks/golden_pixels.py: 0 between 1 and 2 threads, 1
# with the torch backend; docs/performance.md).
PIXEL_TOLERANCE = 1


@cache
def _codec(model: str) -> Codec:
    torch.set_num_threads(2)
    return Codec(model=model, device="cpu", workers=1).load()


@pytest.mark.parametrize("name", sorted(RECORD))
def test_golden_file_decodes_to_recorded_latents_and_pixels(name):
    expected = RECORD[name]
    codec = _codec(expected.get("model", UNPREFIXED))
    data = (GOLDEN / name).read_bytes()
    assert latent_checksum(decoded_latents(codec, data)) == expected["latent_sha256"]
    image = codec.decode(data)
    assert list(image.size) == expected["size"] and image.mode == expected["mode"]
    recorded = Image.open(PIXELS / f"{name}.png")
    assert recorded.mode == image.mode and recorded.size == image.size
    got, want = (np.asarray(im, dtype=np.int16) for im in (image, recorded))
    assert np.abs(got - want).max() <= PIXEL_TOLERANCE
    if "A" in image.mode:  # alpha is lossless: exact everywhere
        assert np.array_equal(got[..., -1], want[..., -1])


@pytest.mark.parametrize("name", sorted(RECORD))
def test_golden_file_is_the_one_recorded(name):
    """The committed bytes are those make_golden.py wrote (and recorded): a golden file
    replaced or damaged would otherwise go unnoticed, or be blamed on the decoder."""
    data = (GOLDEN / name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == RECORD[name]["file_sha256"]


def test_every_installed_model_has_every_golden_file():
    """A model that ships gets golden files in the same change: one per case its family
    can write (format versions, effort levels)."""
    cards = {card.stem: json.loads(card.read_text()) for card in WEIGHTS_DIR.glob("*.json")}
    # A residual model's golden files are the residual layer's (below), not an image
    # model's cases.
    residual = [name for name, card in cards.items() if card.get("family") == RESIDUAL_FAMILY]
    shipped = sorted(name for name in cards if name not in residual)
    assert shipped
    missing = [case.name for case in RESIDUAL_GOLDEN.CASES
               if residual and case.name not in RESIDUAL_RECORD]
    for model in shipped:
        family = get_family(find_model(model).family)
        missing += [golden_name(case, model) for case in CASES
                    if writable(case, family) and golden_name(case, model) not in RECORD]
    assert not missing, missing


def test_the_corpus_covers_every_mode_and_format_version():
    """What the promise is checked on: every pixel mode, every format version written,
    several tiles and an effort above 1."""
    entries = list(RECORD.values())
    assert {e["mode"] for e in entries} == {"L", "LA", "RGB", "RGBA"}
    assert {e.get("format_version") for e in entries} >= {1, 2, 3}
    assert any(e.get("effort", 1) > 1 for e in entries)
    assert any(e.get("tile_size") for e in entries)


# Files of the residual layer and of the exact synthesis marker (aec 0.3.0 on): their
# pixels are exact everywhere, so they are compared bit for bit; lossless ones must also
# be the very image coded. Recorded once the shipped residual model exists
# (tests/golden/make_residual_golden.py).
RESIDUAL_RECORD = (json.loads(RESIDUAL_GOLDEN.RECORD.read_text())
                   if RESIDUAL_GOLDEN.RECORD.exists() else {})


@pytest.mark.skipif(not RESIDUAL_RECORD, reason="no residual golden files recorded yet")
@pytest.mark.parametrize("name", sorted(RESIDUAL_RECORD) or ["none"])
def test_residual_golden_file_decodes_to_its_exact_pixels(name):
    expected = RESIDUAL_RECORD[name]
    codec = _codec(expected["model"])
    data = (GOLDEN / name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == expected["file_sha256"]
    assert latent_checksum(decoded_latents(codec, data)) == expected["latent_sha256"]
    image = codec.decode(data)
    assert pixel_checksum(image) == expected["pixels_sha256"]
    case = next(c for c in RESIDUAL_GOLDEN.CASES if c.name == name)
    if case.max_error is not None:
        original = np.asarray(RESIDUAL_GOLDEN.case_image(case), dtype=np.int16)
        assert np.abs(np.asarray(image, dtype=np.int16) - original).max() <= case.max_error


def test_every_residual_case_is_recorded_once_written():
    if RESIDUAL_RECORD:
        assert sorted(RESIDUAL_RECORD) == sorted(c.name for c in RESIDUAL_GOLDEN.CASES)
