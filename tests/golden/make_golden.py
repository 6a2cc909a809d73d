"""Write golden .aec files of a shipped model and record their latent checksums.

Every model that has shipped has golden files here, and CI decodes them all
(tests/test_golden.py): that is how the compatibility promise is kept. A model's golden
files are written once, when it first ships, and never regenerated: a release that
cannot decode them has broken files users already have.

    python tests/golden/make_golden.py MODEL     # a newly shipped model's files
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
RECORD = HERE / "golden.json"
sys.path.insert(0, str(HERE.parent.parent))

from neuralcodec import Codec  # noqa: E402

SAMPLE = HERE.parent.parent / "neuralcodec" / "samples" / "kodim23.png"
CASES = [  # (file name, crop box, mode, quality)
    ("rgb-q20.aec", (300, 120, 364, 184), "RGB", 20),
    ("gray-q70.aec", (100, 300, 196, 364), "L", 70),
    ("rgba-q95.aec", (500, 50, 548, 90), "RGBA", 95),
]
# The first model's files predate per-model names and keep their plain ones.
UNPREFIXED = "aec-hp-ckbd"


def latent_checksum(latents) -> str:
    """SHA-256 of a file's decoded integer latents, of the kinds the families decode to
    (a family with another kind adds it here, with its first golden files)."""
    if hasattr(latents, "z_symbols"):  # the families with a hyperprior
        arrays = (latents.z_symbols, latents.y_symbols)
    elif hasattr(latents, "indices"):  # vector-quantized
        arrays = (latents.indices, np.asarray(latents.units))
    else:
        raise TypeError(f"no checksum for latents of type {type(latents).__name__}")
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a, dtype="<i8").tobytes())
    return h.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--replace", action="store_true",
                        help="Overwrite the model's existing golden files (breaks the promise "
                             "for a shipped model: only for one that never shipped).")
    args = parser.parse_args()
    record = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    codec = Codec(model=args.model, device="cpu")
    sample = Image.open(SAMPLE).convert("RGB")
    for case, box, mode, quality in CASES:
        name = case if args.model == UNPREFIXED else f"{args.model}-{case}"
        if name in record and not args.replace:
            sys.exit(f"{name} exists: a shipped model's golden files are never rewritten")
        im = sample.crop(box).convert(mode)
        if mode == "RGBA":
            alpha = np.linspace(0, 255, im.width * im.height).astype(np.uint8)
            im.putalpha(Image.fromarray(alpha.reshape(im.height, im.width), "L"))
        data = codec.encode(im, quality)
        (HERE / name).write_bytes(data)
        _, latents = codec.decode_latents(data)
        record[name] = {
            "model": args.model,
            "file_sha256": hashlib.sha256(data).hexdigest(),
            "latent_sha256": latent_checksum(latents),
            "size": list(im.size),
            "mode": mode,
        }
        print(name, len(data), "bytes")
    RECORD.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
