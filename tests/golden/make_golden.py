"""Write golden .aec files of a shipped model and record their latent checksums and
decoded pixels.

Every model that has shipped has golden files here, and CI decodes them all
(tests/test_golden.py): that is how the compatibility promise is kept. A model's golden
files are written once, when it first ships (or when a case is added), and never
regenerated: a release that cannot decode them has broken files users already have.

    python tests/golden/make_golden.py MODEL     # the model's files not yet written

Per file the record holds the file's SHA-256, the SHA-256 of its decoded integer latents
(every tile's, in order: exact on every machine) and, in ``pixels/NAME.png``, the pixels
the writing release decoded (the float synthesis may differ by one level elsewhere; the
test states that tolerance). The writer uses only the ``Codec`` API of 0.1.0, so
``benchmarks/compat_check.py`` can encode these cases with any release from 0.1.0 on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
RECORD = HERE / "golden.json"
PIXELS = HERE / "pixels"  # NAME.png: the pixels of golden file NAME, as written
SAMPLE = HERE.parent.parent / "neuralcodec" / "samples" / "kodim23.png"
# The first model's files predate per-model names and keep their plain ones.
UNPREFIXED = "aec-hp-ckbd"
# The smallest tile size the options allow (codec/options.py MIN_TILE_SIZE), so that a
# small image has several tiles.
SMALL_TILES = 64


@dataclass(frozen=True)
class Case:
    """One golden file per model whose family can write it."""

    name: str  # file name, prefixed with the model's name (see golden_name)
    box: tuple[int, int, int, int]  # crop of the sample image
    mode: str
    quality: float
    version: int = 3  # container format version
    tile_size: int | None = None  # None: the default (one tile for these sizes)
    effort: int = 1
    first: bool = False  # one of the three cases of 0.1.0's first golden files


CASES = [
    # The first golden files (0.1.0; aec-hp-ckbd's without the model prefix).
    Case("rgb-q20.aec", (300, 120, 364, 184), "RGB", 20, first=True),
    Case("gray-q70.aec", (100, 300, 196, 364), "L", 70, first=True),
    Case("rgba-q95.aec", (500, 50, 548, 90), "RGBA", 95, first=True),
    # Added before 0.2.0 froze the models, written with 0.1.0 (tag v0.1.0).
    Case("odd-rgb-q50.aec", (200, 200, 237, 229), "RGB", 50),
    Case("odd-gray-q0.aec", (400, 300, 445, 331), "L", 0),
    Case("odd-rgba-q100.aec", (600, 400, 633, 427), "RGBA", 100),
    Case("odd-la-q60.aec", (50, 420, 79, 455), "LA", 60),
    Case("tiles-rgb-q40.aec", (250, 250, 330, 322), "RGB", 40, tile_size=SMALL_TILES),
    Case("tiles-rgba-q75.aec", (420, 180, 492, 246), "RGBA", 75, tile_size=SMALL_TILES),
    Case("effort2-rgb-q60.aec", (150, 30, 214, 78), "RGB", 60, effort=2),
    Case("v2-rgb-q50.aec", (200, 200, 237, 229), "RGB", 50, version=2),
    Case("v2-rgba-q80.aec", (600, 400, 633, 427), "RGBA", 80, version=2),
    Case("v1-rgb-q50.aec", (200, 200, 237, 229), "RGB", 50, version=1),
    Case("v1-gray-q70.aec", (400, 300, 445, 331), "L", 70, version=1),
]


def golden_name(case: Case, model: str) -> str:
    return case.name if case.first and model == UNPREFIXED else f"{model}-{case.name}"


def latent_checksum(latents) -> str:
    """SHA-256 of a file's decoded integer latents (one tile's, or a list of every
    tile's), of the kinds the families decode to (a family with another kind adds it
    here, with its first golden files). A one-tile list hashes as that tile alone."""
    h = hashlib.sha256()
    for tile in latents if isinstance(latents, list) else [latents]:
        if hasattr(tile, "z_symbols"):  # the families with a hyperprior
            arrays = (tile.z_symbols, tile.y_symbols)
        elif hasattr(tile, "indices"):  # vector-quantized
            arrays = (tile.indices, np.asarray(tile.units))
        elif hasattr(tile, "grids"):  # overfitted: its own networks' integers, then latents
            arrays = tuple(q for q, _ in tile.parameters.values()) + tuple(tile.grids)
        else:
            raise TypeError(f"no checksum for latents of type {type(tile).__name__}")
        for a in arrays:
            h.update(np.ascontiguousarray(a, dtype="<i8").tobytes())
    return h.hexdigest()


def pixel_checksum(image: Image.Image) -> str:
    """SHA-256 of a decoded image's mode, size and 8-bit samples."""
    h = hashlib.sha256(f"{image.mode} {image.width}x{image.height}\n".encode())
    h.update(np.ascontiguousarray(np.asarray(image)).tobytes())
    return h.hexdigest()


def case_image(case: Case) -> Image.Image:
    im = Image.open(SAMPLE).convert("RGB").crop(case.box).convert(case.mode)
    if "A" in case.mode:  # a ramp: every alpha value, restored exactly
        alpha = np.linspace(0, 255, im.width * im.height).astype(np.uint8)
        im.putalpha(Image.fromarray(alpha.reshape(im.height, im.width), "L"))
    return im


def writable(case: Case, family) -> bool:
    """Whether a model can write this case: its family's (or loaded coder's) format
    versions and effort levels."""
    return case.version in family.formats and case.effort <= family.max_effort


def codec_for(case: Case, model: str):
    from neuralcodec import Codec

    options = {} if case.tile_size is None else {"tile_size": case.tile_size}
    return Codec(model=model, device="cpu", format_version=case.version, workers=1,
                 **options)


def encode_case(case: Case, model: str) -> bytes:
    codec = codec_for(case, model)
    return codec.encode(case_image(case), case.quality, effort=case.effort)


def decoded_latents(codec, data: bytes) -> list:
    """Every tile's decoded latents, in raster order."""
    header, first = codec.decode_latents(data)
    return [first] + [codec.decode_latents(data, tile=i)[1]
                      for i in range(1, len(header.grid))]


def main() -> None:
    sys.path.insert(0, str(HERE.parent.parent))  # this checkout's package
    from neuralcodec import Codec

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--replace", action="store_true",
                        help="Overwrite the model's existing golden files (breaks the promise "
                             "for a shipped model: only for one that never shipped).")
    args = parser.parse_args()
    record = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    decoder = Codec(model=args.model, device="cpu").load()
    coder = decoder.coder()
    PIXELS.mkdir(exist_ok=True)
    for case in CASES:
        name = golden_name(case, args.model)
        if not writable(case, coder):
            print(name, "skipped: the model's family cannot write it")
            continue
        if name in record and not args.replace:
            print(name, "kept: a shipped model's golden files are never rewritten")
            data = (HERE / name).read_bytes()
        else:
            data = encode_case(case, args.model)
            (HERE / name).write_bytes(data)
            record[name] = {
                "model": args.model,
                "file_sha256": hashlib.sha256(data).hexdigest(),
                "latent_sha256": latent_checksum(decoded_latents(decoder, data)),
                "size": list(case_image(case).size),
                "mode": case.mode,
                "format_version": case.version,
                "effort": case.effort,
                "tile_size": case.tile_size,
                "pixels_sha256": pixel_checksum(decoder.decode(data)),
            }
            print(name, len(data), "bytes")
        pixels = PIXELS / f"{name}.png"
        if not pixels.exists():  # the first files' pixels were recorded after them
            decoder.decode(data).save(pixels, optimize=True)
    RECORD.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
