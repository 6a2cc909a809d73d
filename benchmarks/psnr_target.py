"""A PSNR target on every image: does ``aec encode --psnr P`` meet it, with which layer, at
what rate? Above what quality 100 reaches, the encoder uses the residual layer with the
largest K that reaches the target (README, "Near-lossless and lossless").

    python benchmarks/psnr_target.py --psnr 45              # the 24 Kodak images
    python benchmarks/psnr_target.py --psnr 45 --limit 4

Each image goes through ``Codec.encode_to_target(psnr=P)`` (what ``--psnr`` runs); the
file is decoded and its RGB PSNR measured against the image. Printed and saved per image:
bpp of the whole file, PSNR, the base quality, the residual layer's K (none: base only),
encode and decode seconds; then the smallest PSNR and whether every image met P.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._inputs import add_image_options  # noqa: E402
from benchmarks._report import save_json  # noqa: E402
from neuralcodec import Codec  # noqa: E402
from neuralcodec.format.inspect import describe  # noqa: E402
from neuralcodec.metrics import bpp, psnr  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_image_options(ap, "aec-hp-ckbd")
    ap.add_argument("--psnr", type=float, default=45.0)
    ap.add_argument("--note", default="")
    ap.add_argument("--out", default=None,
                    help="JSON file (default benchmarks/results/psnr-target-P.json)")
    args = ap.parse_args()
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"psnr-target-{args.psnr:g}.json")
    codec = Codec(device="cpu", model=args.model)
    rows = []
    for path in sorted(Path(args.folder).glob("*.png"))[: args.limit]:
        image = Image.open(path).convert("RGB")
        t0 = time.perf_counter()
        data, quality = codec.encode_to_target(path, psnr=args.psnr)
        t1 = time.perf_counter()
        decoded = codec.decode(data).convert("RGB")
        t2 = time.perf_counter()
        residual = describe(data).get("residual")
        row = {"image": path.stem, "bpp": bpp(len(data), *image.size),
               "psnr": psnr(np.asarray(image), np.asarray(decoded)), "quality": quality,
               "max_error": residual["max_error"] if residual else None,
               "encode_s": t1 - t0, "decode_s": t2 - t1}
        rows.append(row)
        k = "base only" if row["max_error"] is None else f"K={row['max_error']}"
        print(f"{row['image']}: {row['bpp']:.3f} bpp, {row['psnr']:.2f} dB, q{quality:g}, "
              f"{k}, encode {row['encode_s']:.1f} s, decode {row['decode_s']:.2f} s",
              flush=True)
    if not rows:
        sys.exit("psnr_target: no images")
    worst = min(r["psnr"] for r in rows)
    met = sum(r["psnr"] >= args.psnr for r in rows)
    summary = {"target_psnr": args.psnr, "images": len(rows), "met": met,
               "lowest_psnr": worst, "mean_bpp": float(np.mean([r["bpp"] for r in rows])),
               "load_average": os.getloadavg()[0]}
    print(f"{met} of {len(rows)} images met {args.psnr:g} dB; lowest {worst:.2f} dB; "
          f"mean {summary['mean_bpp']:.3f} bpp")
    save_json({"summary": summary, "rows": rows, "note": args.note}, out)


if __name__ == "__main__":
    main()
