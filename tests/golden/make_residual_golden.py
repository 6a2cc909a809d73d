"""Write the golden files of the residual layer and of the exact synthesis marker, and
record what they decode to.

These files (written from aec 0.3.0 on) decode to the same pixels on every machine,
thread count, NumPy version and backend, so their record holds the SHA-256 of the exact
decoded pixels, besides the file's and its latents' (tests/test_golden.py checks all
three). As make_golden.py's, each file is written once, when its residual model ships,
and never regenerated.

    python tests/golden/make_residual_golden.py      # the files not yet written
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
if __package__:
    from .make_golden import Case, decoded_latents, latent_checksum, pixel_checksum
    from .make_golden import case_image as golden_case_image
else:  # run as a script: this checkout's package and tests
    sys.path.insert(0, str(HERE.parent.parent))
    from tests.golden.make_golden import (
        Case,
        decoded_latents,
        latent_checksum,
        pixel_checksum,
    )
    from tests.golden.make_golden import case_image as golden_case_image

RECORD = HERE / "golden-residual.json"
BASE_MODEL = "aec-hp-ckbd"


@dataclass(frozen=True)
class ResidualCase:
    name: str
    box: tuple[int, int, int, int]  # crop of the sample image
    mode: str
    quality: float  # the base layer's (fixed, so writing the files is quick)
    max_error: int | None  # None: the base layer alone, with the exact synthesis marker
    tile_size: int | None = None


CASES = [
    ResidualCase("residual-rgb-lossless.aec", (200, 200, 245, 231), "RGB", 70, 0),
    ResidualCase("residual-gray-k2.aec", (400, 300, 445, 331), "L", 55, 2),
    ResidualCase("residual-tiles-rgba-lossless.aec", (420, 180, 492, 246), "RGBA", 85, 0,
                 tile_size=64),
    ResidualCase("exsy-rgb-q50.aec", (200, 200, 237, 229), "RGB", 50, None),
]


def case_image(case: ResidualCase):
    return golden_case_image(Case(case.name, case.box, case.mode, case.quality))


def encode_case(case: ResidualCase) -> bytes:
    from neuralcodec import Codec

    options = {} if case.tile_size is None else {"tile_size": case.tile_size}
    codec = Codec(model=BASE_MODEL, device="cpu", workers=1, **options)
    if case.max_error is None:
        return codec.encode(case_image(case), case.quality)
    return codec.encode(case_image(case), case.quality, max_error=case.max_error)


def main() -> None:
    from neuralcodec import Codec

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE,
                        help="Folder to write into (a trial elsewhere: nothing recorded here).")
    args = parser.parse_args()
    record_path = args.out / RECORD.name
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    decoder = Codec(model=BASE_MODEL, device="cpu", workers=1).load()
    for case in CASES:
        if case.name in record:
            print(case.name, "kept: golden files are never rewritten")
            continue
        data = encode_case(case)
        (args.out / case.name).write_bytes(data)
        decoded = decoder.decode(data)
        record[case.name] = {
            "model": BASE_MODEL,
            "file_sha256": hashlib.sha256(data).hexdigest(),
            "latent_sha256": latent_checksum(decoded_latents(decoder, data)),
            "size": list(decoded.size),
            "mode": case.mode,
            "max_error": case.max_error,
            "pixels_sha256": pixel_checksum(decoded),  # exact everywhere
        }
        print(case.name, len(data), "bytes")
    record_path.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
