"""Encoder effort levels on Kodak: BD-rate of every level against effort 1, and seconds.

Runs ``aec bench`` (the harness, resumable: finished images are cached in ``--out``) for
one model at several effort levels, then prints and saves a table: per level, its
refinement iterations, the BD-rate (RGB PSNR, whole-file bpp) against effort 1 over the
harness's qualities, and the mean encode and decode seconds per image.

    python benchmarks/effort.py                          # levels 1..4, all 24 images
    python benchmarks/effort.py --efforts 1,4 --limit 6  # a partial table from the cache
    python benchmarks/effort.py --device cuda
    python benchmarks/effort.py --timing 3     # quiet timing only: 3 images, quality 60

Encode seconds are those of the whole encode at one quality (the analysis transform
included); decode seconds are the plain decoder's. Timings are only as quiet as the
machine: say what else ran.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # allow running from a checkout without installing
    sys.path.insert(0, str(ROOT))

from benchmarks._inputs import add_image_options  # noqa: E402
from benchmarks._report import print_and_save  # noqa: E402
from neuralcodec.bench.harness import BenchOptions, run_bench  # noqa: E402
from neuralcodec.families.base import get_family  # noqa: E402
from neuralcodec.families.zoo import DEFAULT_MODEL, find_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_image_options(parser, DEFAULT_MODEL)
    parser.add_argument("--efforts", default="1,2,3,4")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="runs/effort-kodak",
                        help="harness folder (its cache makes reruns resume)")
    parser.add_argument("--save", default="benchmarks/results/effort-kodak.json")
    parser.add_argument("--note", default="")
    parser.add_argument("--timing", type=int, default=0, metavar="N",
                        help="only time each level's encode and decode on N images")
    args = parser.parse_args()
    efforts = [int(e) for e in args.efforts.split(",")]
    if efforts[0] != 1:
        efforts.insert(0, 1)  # the anchor
    if args.timing:
        timing(args, efforts)
        return

    result = run_bench(BenchOptions(
        folder=args.folder, out=args.out, codecs=["aec"], models=[args.model],
        efforts=efforts, device=args.device, limit=args.limit, speed=False,
        note=args.note, log=lambda message: print(message, file=sys.stderr)))
    report = result.report
    family = get_family(find_model(args.model).family)
    assert family is not None
    labels = {e: args.model if e == 1 else f"{args.model} effort {e}" for e in efforts}
    bd = {(x["test"], x["anchor"]): x for x in report["bd"]["psnr"]}
    levels = []
    for effort, label in labels.items():
        points = report["aggregates"][label]
        entry = bd.get((label, labels[1]), {})
        levels.append({
            "effort": effort,
            "iterations": family.efforts[effort],
            "bd_rate_vs_effort_1_pct": 0.0 if effort == 1 else entry.get("bd_rate_pct"),
            "bd_psnr_vs_effort_1_db": 0.0 if effort == 1 else entry.get("bd_quality"),
            "encode_s_per_image": sum(p["encode_s"] for p in points) / len(points),
            "decode_s_per_image": sum(p["decode_s"] for p in points) / len(points),
            "points": [{k: p[k] for k in ("setting", "bpp", "psnr")} for p in points],
        })
    print(f"{'effort':>6} {'iters':>5} {'BD-rate':>8} {'BD-PSNR':>8} {'enc s':>7} {'dec s':>6}")
    for row in levels:
        rate, gain = row["bd_rate_vs_effort_1_pct"], row["bd_psnr_vs_effort_1_db"]
        print(f"{row['effort']:>6} {row['iterations']:>5} "
              f"{'n/a' if rate is None else f'{rate:+.2f} %':>8} "
              f"{'n/a' if gain is None else f'{gain:+.3f}':>8} "
              f"{row['encode_s_per_image']:7.2f} {row['decode_s_per_image']:6.3f}")
    print_and_save({
        "command": "python benchmarks/effort.py " + " ".join(sys.argv[1:]),
        "model": args.model,
        "images": len(report["images"]),
        "qualities": report["settings"]["aec_qualities"],
        "environment": report["environment"],
        "levels": levels,
    }, Path(args.save))


def timing(args: argparse.Namespace, efforts: list[int], quality: float = 60) -> None:
    """Median seconds of a whole encode (image in memory, model loaded) per level on the
    first N images, one warm-up encode first; then the decode of every file, timed in a
    fresh process: a process that has just refined latents was seen to decode any file
    slower, a plain file as much as a refined one, so that is the process's state, not
    the file's cost."""
    import statistics
    import subprocess
    import tempfile
    import time

    import torch
    from PIL import Image

    from neuralcodec.bench.harness import list_images
    from neuralcodec.codec import Codec

    codec = Codec(args.model, args.device).load()
    images = [Image.open(p).convert("RGB") for p in list_images(Path(args.folder),
                                                                args.timing)]
    codec.encode(images[0], quality, effort=max(efforts))
    levels = []
    with tempfile.TemporaryDirectory() as work:
        files = []
        for effort in efforts:
            encode_s = []
            for i, image in enumerate(images):
                t0 = time.perf_counter()
                data = codec.encode(image, quality, effort=effort)
                encode_s.append(time.perf_counter() - t0)
                files.append(Path(work) / f"e{effort}-{i}.aec")
                files[-1].write_bytes(data)
            levels.append({"effort": effort, "encode_s_median": statistics.median(encode_s),
                           "encode_s": encode_s})
        decoded = subprocess.run(
            [sys.executable, "-c", DECODE_TIMER, args.model, args.device, str(len(images)),
             *map(str, files)], capture_output=True, text=True, check=True).stdout.split()
    seconds = [float(v) for v in decoded]
    for row in levels:
        mine = [seconds[files.index(f)] for f in files if f.name.startswith(
            f"e{row['effort']}-")]
        row.update(decode_s_median=statistics.median(mine), decode_s=mine)
        print(f"effort {row['effort']}: encode {row['encode_s_median']:.2f} s, "
              f"decode {row['decode_s_median']:.3f} s (median of {len(images)})")
    print_and_save({
        "command": "python benchmarks/effort.py " + " ".join(sys.argv[1:]),
        "model": args.model, "quality": quality, "device": args.device,
        "torch_threads": torch.get_num_threads(), "note": args.note, "levels": levels,
    }, Path(args.save).with_name(Path(args.save).stem + "-timing.json"))


# Decodes each file (after one warm-up decode) and prints its seconds in file order.
# Files come level by level; they are decoded image by image, every level of an image
# in turn, so a drift in the machine's speed hits all levels alike.
DECODE_TIMER = """
import sys, time
from pathlib import Path
from neuralcodec.codec import Codec
codec = Codec(sys.argv[1], sys.argv[2]).load()
images = int(sys.argv[3])
files = [Path(f).read_bytes() for f in sys.argv[4:]]
codec.decode(files[0])
seconds = [0.0] * len(files)
order = sorted(range(len(files)), key=lambda i: (i % images, i))
for i in order:
    t0 = time.perf_counter()
    codec.decode(files[i])
    seconds[i] = time.perf_counter() - t0
print(" ".join(f"{s:.4f}" for s in seconds))
"""


if __name__ == "__main__":
    main()
