"""Encode and decode seconds of several models on one image, interleaved.

The models take turns (encode, decode, next model, ... ``--repeats`` rounds) in one
process with the models loaded, so load from other processes on a shared CPU falls on
all of them alike; the minimum and median of each are reported, and each model's ratio
to the first. For the channel-context family's speed target (≤ 1.3× aec-hp-ckbd):

    python benchmarks/model_speed.py aec-hp-ckbd aec-hp-elic \\
        --image neuralcodec/samples/kodim23.png --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import neuralcodec  # noqa: E402, F401  (first: it names the BLAS's kernels before NumPy loads)
from benchmarks._report import print_and_save  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--image", type=Path, default=ROOT / "neuralcodec/samples/kodim23.png")
    parser.add_argument("--quality", type=float, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="Also write the JSON here.")
    args = parser.parse_args()

    from PIL import Image

    from neuralcodec import Codec
    from neuralcodec.codec.threads import set_threads

    set_threads(args.threads)  # the NumPy coders' and, where a model needs it, torch's
    image = Image.open(args.image).convert("RGB")
    codecs = {name: Codec(name, device="cpu").load() for name in args.models}
    files = {name: codec.encode(image, args.quality) for name, codec in codecs.items()}
    for name, codec in codecs.items():  # warm-up
        codec.decode(files[name])
    times: dict[str, dict[str, list[float]]] = {n: {"encode": [], "decode": []} for n in codecs}
    for _ in range(args.repeats):
        for name, codec in codecs.items():
            t0 = time.perf_counter()
            codec.encode(image, args.quality)
            t1 = time.perf_counter()
            codec.decode(files[name])
            t2 = time.perf_counter()
            times[name]["encode"].append(t1 - t0)
            times[name]["decode"].append(t2 - t1)
    first = args.models[0]
    rows = {}
    for name in args.models:
        row = {"bpp": 8 * len(files[name]) / (image.width * image.height)}
        for what in ("encode", "decode"):
            seconds = times[name][what]
            row[f"{what}_min_s"] = round(min(seconds), 3)
            row[f"{what}_median_s"] = round(statistics.median(seconds), 3)
            row[f"{what}_median_ratio"] = round(
                statistics.median(seconds) / statistics.median(times[first][what]), 3)
        rows[name] = row
    print_and_save({"image": str(args.image), "size": list(image.size),
                    "quality": args.quality, "threads": args.threads,
                    "repeats": args.repeats, "models": rows}, args.out)


if __name__ == "__main__":
    main()
