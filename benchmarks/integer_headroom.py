"""Calibration check of the integer parameter path: largest activation per layer on real
images versus the clamp limit (a clamped activation would cost rate, never correctness).

    python benchmarks/integer_headroom.py --images ../shared/datasets/kodak --limit 8
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._report import save_json  # noqa: E402
from neuralcodec import Codec  # noqa: E402
from neuralcodec.families.hyperprior.integer_net import ACT_LIMIT, FRAC_BITS  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default=str(ROOT.parent / "shared" / "datasets" / "kodak"))
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--qualities", default="0,50,100")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "integer-headroom.json"))
    args = ap.parse_args()
    codec = Codec(device="cpu")
    path = codec.coder().codec_for(codec.format_version).path  # the path files use
    path.peaks = {}
    paths = sorted(Path(args.images).glob("*.png"))[: args.limit]
    for p in paths:
        im = Image.open(p).convert("RGB")
        for q in (float(v) for v in args.qualities.split(",")):
            codec.decode_latents(codec.encode(im, q))
    limit = ACT_LIMIT / 2**FRAC_BITS
    report = {k: {"max_abs": v / 2**FRAC_BITS, "fraction_of_limit": v / ACT_LIMIT}
              for k, v in path.peaks.items()}
    print(f"clamp limit: ±{limit:g}; {len(paths)} images, qualities {args.qualities}")
    for k, v in report.items():
        share = 100 * v["fraction_of_limit"]
        print(f"  {k:24s} max |a| {v['max_abs']:9.3f}  ({share:.2f}% of limit)")
    save_json({"images": [p.name for p in paths], "limit": limit, "layers": report},
              Path(args.out))


if __name__ == "__main__":
    main()
