"""Digests of what the codec writes and decodes here, to compare with another install.

Encodes the first ``--limit`` images of ``--folder`` at each of ``--qualities`` (default
model, CPU) and records, per file: the SHA-256 of the ``.aec`` bytes, of its decoded
integer latents (as the golden-file test computes them), of the decoded pixels and of
the pixels of the exact synthesis transform (``exact_synthesis.py`` of the hyperprior
family); and also decodes every committed golden file of the model. Run it in two
installs (another NumPy or BLAS, another CPU, another thread count) and compare (with
the residual model installed, each image is also coded with the residual layer at
``--max-errors``, whose decoded pixels are exact everywhere):

    python benchmarks/file_digests.py --save /tmp/a.json            # install A
    python benchmarks/file_digests.py --compare /tmp/a.json         # install B

What the codec promises (README, "Files decode the same everywhere"): a file decodes to
the same latents everywhere, so the golden files' and every file's latent digests must
match, and so must the exact synthesis's pixels. The file bytes may differ where the
float analysis transform rounds differently, and the pixels where the float synthesis
does (by at most a level or so).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import neuralcodec  # noqa: E402, F401  (first: it names the BLAS's kernels before NumPy loads)
from benchmarks._inputs import add_image_options  # noqa: E402
from benchmarks._report import save_json  # noqa: E402
from neuralcodec.codec.residual_layer import residual_layer_here  # noqa: E402
from neuralcodec.cpu import blas_description  # noqa: E402
from tests.golden.make_golden import (  # noqa: E402
    RECORD,
    UNPREFIXED,
    decoded_latents,
    latent_checksum,
)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def exact_synthesis(codec):
    """The exact synthesis of the codec's model, or None where its family has none (only
    the families on the hyperprior's transforms have one)."""
    from neuralcodec.families.hyperprior.exact_synthesis import ExactSynthesis

    coder = codec.coder()
    if getattr(coder, "transforms", None) is None:
        return None
    return ExactSynthesis.of_model(coder.info)


RESIDUAL_QUALITY = 70.0  # the base quality of the residual-layer files


def digests(codec, data: bytes, exact=None) -> dict[str, str]:
    import numpy as np

    from neuralcodec.codec.codec import rate_point
    from neuralcodec.format.container import parse_header

    tiles = decoded_latents(codec, data)  # every tile's, as the golden record holds
    pixels = np.asarray(codec.decode(data))
    out = {"file": sha256(data), "latents": latent_checksum(tiles),
           "pixels": sha256(pixels.tobytes())}
    if exact is not None:  # pixels that must be the same everywhere
        # Each tile's synthesis, before the cross-fade; the quality from the header alone.
        point = rate_point(parse_header(data, header_only=True)[0].quality)
        out["exact_pixels"] = sha256(b"".join(exact(t.y_hat, point).tobytes() for t in tiles))
    return out


def measure(args: argparse.Namespace) -> dict:
    import numpy as np
    from PIL import Image

    from neuralcodec import Codec

    version = {} if args.format_version is None else {"format_version": args.format_version}
    codec = Codec(model=args.model, device="cpu", **version).load()
    exact = exact_synthesis(codec)
    files = {}
    for path in sorted(Path(args.folder).glob("*.png"))[: args.limit]:
        image = Image.open(path).convert("RGB")
        for quality in args.qualities:
            data = codec.encode(image, quality, effort=args.effort)
            files[f"{path.name}@q{quality:g}"] = digests(codec, data, exact)
        for max_error in args.max_errors if residual_layer_here(args.model) else []:
            # The residual layer's decoded pixels are exact everywhere.
            data = codec.encode(image, RESIDUAL_QUALITY, max_error=max_error)
            entry = digests(codec, data)
            files[f"{path.name}@q{RESIDUAL_QUALITY:g}+K{max_error}"] = {
                **entry, "exact_pixels": entry["pixels"]}
    golden = {}
    for name, entry in json.loads(RECORD.read_text()).items():
        if entry.get("model", UNPREFIXED) == args.model:
            data = (RECORD.parent / name).read_bytes()
            golden[name] = {**digests(codec, data, exact),
                            "recorded_latents": entry["latent_sha256"]}
    return {"environment": {"python": platform.python_version(), "numpy": np.__version__,
                            "blas": blas_description(), "cpu_count": os.cpu_count(),
                            "model": args.model, "effort": args.effort,
                            "format_version": args.format_version},
            "files": files, "golden": golden}


def compare(mine: dict, theirs: dict) -> bool:
    """Print how two runs differ; True when every latent digest agrees, and every
    exact-synthesis pixel digest that both runs have."""
    agree = True
    for group in ("files", "golden"):
        names = sorted(set(mine[group]) & set(theirs[group]))
        keys = [k for k in ("file", "latents", "pixels", "exact_pixels")
                if all(k in run[group][n] for run in (mine, theirs) for n in names)]
        same = {key: sum(mine[group][n][key] == theirs[group][n][key] for n in names)
                for key in keys}
        print(f"{group}: {len(names)} in both; identical: "
              + ", ".join(f"{key} {count}/{len(names)}" for key, count in same.items()))
        for n in names:
            for key in ("latents", "exact_pixels"):
                if key in keys and mine[group][n][key] != theirs[group][n][key]:
                    agree = False
                    print(f"  {key.replace('_', ' ')} differ: {n}")
    for name, entry in mine["golden"].items():
        if entry["latents"] != entry["recorded_latents"]:
            agree = False
            print(f"  golden file {name}: latents differ from the recorded ones")
    print("here:  " + json.dumps(mine["environment"]))
    print("other: " + json.dumps(theirs["environment"]))
    return agree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_image_options(parser, "aec-hp-ckbd")
    parser.set_defaults(limit=6)
    parser.add_argument("--qualities", type=lambda s: [float(q) for q in s.split(",")],
                        default=[0.0, 25.0, 50.0, 75.0, 100.0])
    parser.add_argument("--effort", type=int, default=1, help="encoder effort of the files")
    parser.add_argument("--max-errors", type=lambda s: [int(k) for k in s.split(",") if k],
                        default=[0, 2],
                        help="also files with the residual layer at these K, where the "
                             "residual model is installed (an empty list: none)")
    parser.add_argument("--format-version", type=int, default=None,
                        help="container version written (default: the current one)")
    parser.add_argument("--save", type=Path, help="write this run's digests here (JSON)")
    parser.add_argument("--compare", type=Path, help="a run's JSON to compare with")
    args = parser.parse_args()
    mine = measure(args)
    if args.save:
        save_json(mine, args.save)
        print(f"saved {args.save} ({len(mine['files'])} files, {len(mine['golden'])} golden)")
    if args.compare:
        same = compare(mine, json.loads(args.compare.read_text()))
        print("every latent and exact-pixel digest agrees" if same
              else "LATENTS OR EXACT PIXELS DIFFER")
        sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
