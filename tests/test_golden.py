"""Golden files: committed .aec files must keep decoding to the same latents.

A failure here means a change broke files users already have. If that is intended
(new default weights, new format version), bump what must be bumped and regenerate with
``python tests/golden/make_golden.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .golden.make_golden import latent_checksum

GOLDEN = Path(__file__).resolve().parent / "golden"
RECORD = json.loads((GOLDEN / "golden.json").read_text())


@pytest.mark.parametrize("name", sorted(RECORD))
def test_golden_file_decodes_to_recorded_latents(codec, name):
    expected = RECORD[name]
    data = (GOLDEN / name).read_bytes()
    _, latents = codec.decode_latents(data)
    assert latent_checksum(latents.z_symbols, latents.y_symbols) == expected["latent_sha256"]
    image = codec.decode(data)
    assert list(image.size) == expected["size"] and image.mode == expected["mode"]
