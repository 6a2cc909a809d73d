"""Kodak sweep of the overfitted model `aec-of` through the codec (what `aec encode
--model aec-of` does): every image at several qualities, images first to last, each
result appended to a JSON as soon as it is measured (bpp from the file's size, RGB PSNR
of the decoded file, encode and decode seconds), so that a rerun resumes; then BD-rates
per complete image against WebP (method 6) and AVIF 4:4:4 (speed 4), and aec-hp-ckbd at
effort 1, from the rows of `aec bench` in benchmarks/results/kodak/results.csv.

    nice -n 15 python benchmarks/overfit_sweep.py --threads 1 \\
        --out benchmarks/results/overfit-sweep/kodak-effort1.json
    python benchmarks/overfit_sweep.py --report --out ...   # BD-rates only, no encoding

Encode times are only as quiet as the machine: say what else ran.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # allow running from a checkout without installing
    sys.path.insert(0, str(ROOT))

import json  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks._inputs import KODAK  # noqa: E402
from benchmarks._report import save_json  # noqa: E402
from neuralcodec import Codec  # noqa: E402
from neuralcodec.codec.threads import set_threads  # noqa: E402
from neuralcodec.metrics import bd_rate, psnr  # noqa: E402

ANCHORS = ROOT / "benchmarks" / "results" / "kodak" / "results.csv"
ANCHOR_CODECS = ("webp", "avif-444", "aec-hp-ckbd")


def anchors() -> dict[str, dict[str, list[tuple[float, float]]]]:
    """image stem -> codec -> [(bpp, psnr)] from the Kodak bench rows."""
    out: dict[str, dict[str, list[tuple[float, float]]]] = {}
    with open(ANCHORS) as f:
        for row in csv.DictReader(f):
            if row["codec"] in ANCHOR_CODECS:
                out.setdefault(Path(row["image"]).stem, {}).setdefault(row["codec"], []).append(
                    (float(row["bpp"]), float(row["psnr"])))
    return out


def report(rows: list[dict], qualities: list[float]) -> dict:
    """BD-rates of aec-of against each anchor on every image with all qualities done,
    and their mean over those images."""
    ref = anchors()
    by_image: dict[str, list[dict]] = {}
    for r in rows:
        by_image.setdefault(r["image"], []).append(r)
    per_image = {}
    for image, done in by_image.items():
        if sorted(r["quality"] for r in done) != sorted(qualities):
            continue
        rates = [r["bpp"] for r in done]
        dists = [r["psnr"] for r in done]
        entry = {}
        for codec in ANCHOR_CODECS:
            points = sorted(ref[image][codec])
            try:
                entry[codec] = bd_rate([p[0] for p in points], [p[1] for p in points],
                                       rates, dists)
            except Exception as exc:  # no overlap: a result, said as such
                entry[codec] = f"n/a ({exc})"
        per_image[image] = entry
    mean = {}
    for codec in ANCHOR_CODECS:
        values = [e[codec] for e in per_image.values() if isinstance(e[codec], float)]
        mean[codec] = float(np.mean(values)) if values else None
    return {"images": sorted(per_image), "bd_rate_percent": per_image,
            "mean_bd_rate_percent": mean}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=Path, default=KODAK)
    parser.add_argument("--limit", type=int, default=24)
    parser.add_argument("--qualities", default="30,50,70,90")
    parser.add_argument("--effort", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--report", action="store_true", help="only the BD-rates")
    args = parser.parse_args()
    qualities = [float(q) for q in args.qualities.split(",")]
    result = {"command": "python benchmarks/overfit_sweep.py " + " ".join(sys.argv[1:]),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {args.threads} "
                         "threads", "effort": args.effort, "qualities": qualities,
              "rows": []}
    if args.out.exists():
        result["rows"] = json.loads(args.out.read_text())["rows"]
    if not args.report:
        set_threads(args.threads)
        codec = Codec(model="aec-of", device="cpu", workers=1)
        for i in range(1, args.limit + 1):
            name = f"kodim{i:02d}"
            source = np.asarray(Image.open(args.folder / f"{name}.png").convert("RGB"))
            for q in qualities:
                if any(r["image"] == name and r["quality"] == q for r in result["rows"]):
                    continue
                t0 = time.perf_counter()
                data = codec.encode(Image.fromarray(source), q, effort=args.effort)
                encode_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                decoded = np.asarray(codec.decode(data).convert("RGB"))
                decode_s = time.perf_counter() - t0
                row = {"image": name, "quality": q, "bytes": len(data),
                       "bpp": 8 * len(data) / (source.shape[0] * source.shape[1]),
                       "psnr": psnr(source, decoded), "encode_s": round(encode_s, 1),
                       "decode_s": round(decode_s, 3),
                       "load_average": os.getloadavg()[0],
                       "date": time.strftime("%Y-%m-%d %H:%M")}
                print(json.dumps(row), flush=True)
                result["rows"].append(row)
                result.update(report(result["rows"], qualities))
                save_json(result, args.out)
    result.update(report(result["rows"], qualities))
    save_json(result, args.out)
    print(json.dumps({k: result[k] for k in ("images", "mean_bd_rate_percent")}))


if __name__ == "__main__":
    main()
