"""Decoding to a lossy format: what saving aec's decoded images as JPEG, WebP, AVIF or
GIF costs, at Pillow's defaults and at the settings ``aec decode`` uses
(``neuralcodec.io.lossy.save_options``, ``--output-quality``, default 95).

    python benchmarks/output_quality.py --images ../shared/datasets/kodak --quality 75

Each image is encoded and decoded by aec at ``--quality``; the decoded image is saved in
each setting and read back. Printed and saved: mean bytes, and mean RGB PSNR of what was
read back against the decoded image (what the saving lost) and against the original.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._report import save_json  # noqa: E402
from neuralcodec import Codec  # noqa: E402
from neuralcodec.io.lossy import DEFAULT_OUTPUT_QUALITY, save_options  # noqa: E402
from neuralcodec.metrics import psnr  # noqa: E402

Q = DEFAULT_OUTPUT_QUALITY
SETTINGS = {  # name: (Pillow format, options)
    "PNG": ("PNG", {}),
    "JPEG, Pillow default (75, 4:2:0)": ("JPEG", {}),
    f"JPEG {Q} 4:2:0": ("JPEG", {"quality": Q, "subsampling": 2}),
    f"JPEG, aec default ({Q}, 4:4:4)": ("JPEG", save_options("JPEG", Q)),
    "WebP, Pillow default (80)": ("WEBP", {}),
    f"WebP, aec default ({Q})": ("WEBP", save_options("WEBP", Q)),
    "WebP, aec --output-quality 100 (lossless)": ("WEBP", save_options("WEBP", 100)),
    "AVIF, Pillow default (75, 4:2:0)": ("AVIF", {}),
    f"AVIF, aec default ({Q}, 4:4:4)": ("AVIF", save_options("AVIF", Q)),
    "GIF (256 colours)": ("GIF", {}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default=str(ROOT.parent / "shared" / "datasets" / "kodak"))
    ap.add_argument("--limit", type=int, default=24)
    ap.add_argument("--quality", type=float, default=75)
    ap.add_argument("--note", default="")
    ap.add_argument("--out",
                    default=str(ROOT / "benchmarks" / "results" / "output-quality.json"))
    args = ap.parse_args()
    codec = Codec(device="cpu")
    paths = sorted(Path(args.images).glob("*.png"))[: args.limit]
    if not paths:
        sys.exit(f"output_quality: no PNG images in {args.images}")
    sums = {name: np.zeros(3) for name in SETTINGS}  # bytes, PSNR vs decoded, vs original
    aec_psnr = 0.0
    for path in paths:
        original = Image.open(path).convert("RGB")
        decoded = codec.decode(codec.encode(original, args.quality)).convert("RGB")
        ref, orig = np.asarray(decoded), np.asarray(original)
        aec_psnr += psnr(orig, ref)
        for name, (fmt, options) in SETTINGS.items():
            buffer = io.BytesIO()
            decoded.save(buffer, format=fmt, **options)
            back = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
            # inf (nothing lost) is kept apart: a mean over it would be inf
            sums[name] += (buffer.tell(), min(psnr(ref, back), 999.0), psnr(orig, back))
        print(f"{path.name} done", flush=True)
    n = len(paths)
    rows = {}
    print(f"{n} images, aec quality {args.quality:g}: decoded image {aec_psnr / n:.2f} dB "
          "against the original (PSNR of 999 below: the decoded pixels exactly)")
    print(f"{'saved as':46s} {'bytes':>8s} {'vs decoded':>11s} {'vs original':>12s}")
    for name, (size, to_decoded, to_original) in ((k, v / n) for k, v in sums.items()):
        rows[name] = {"bytes": size, "psnr_vs_decoded": to_decoded,
                      "psnr_vs_original": to_original,
                      "loss_vs_aec_db": aec_psnr / n - to_original}
        print(f"{name:46s} {size:8.0f} {to_decoded:8.2f} dB {to_original:9.2f} dB")
    save_json({"quality": args.quality, "images": n, "aec_psnr": aec_psnr / n,
               "note": args.note, "settings": rows}, Path(args.out))


if __name__ == "__main__":
    main()
