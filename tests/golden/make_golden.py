"""Regenerate the golden .aec files and their latent checksums.

Run only when a change is *meant* to break existing files (new weights of the default
model, a new format version): tests/test_golden.py exists to catch accidental breaks.

    python tests/golden/make_golden.py
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from neuralcodec import Codec  # noqa: E402

SAMPLE = HERE.parent.parent / "neuralcodec" / "samples" / "kodim23.png"
CASES = [  # (file name, crop box, mode, quality)
    ("rgb-q20.aec", (300, 120, 364, 184), "RGB", 20),
    ("gray-q70.aec", (100, 300, 196, 364), "L", 70),
    ("rgba-q95.aec", (500, 50, 548, 90), "RGBA", 95),
]


def latent_checksum(z_symbols: np.ndarray, y_symbols: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in (z_symbols, y_symbols):
        h.update(np.ascontiguousarray(a, dtype="<i8").tobytes())
    return h.hexdigest()


def main() -> None:
    codec = Codec(device="cpu")
    sample = Image.open(SAMPLE).convert("RGB")
    record = {}
    for name, box, mode, quality in CASES:
        im = sample.crop(box).convert(mode)
        if mode == "RGBA":
            alpha = np.linspace(0, 255, im.width * im.height).astype(np.uint8)
            im.putalpha(Image.fromarray(alpha.reshape(im.height, im.width), "L"))
        data = codec.encode(im, quality)
        (HERE / name).write_bytes(data)
        _, latents = codec.decode_latents(data)
        record[name] = {
            "file_sha256": hashlib.sha256(data).hexdigest(),
            "latent_sha256": latent_checksum(latents.z_symbols, latents.y_symbols),
            "size": list(im.size),
            "mode": mode,
        }
        print(name, len(data), "bytes")
    (HERE / "golden.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
