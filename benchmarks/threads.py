"""Which thread counts `aec encode`/`decode` should use by default, measured.

Two questions, each answered by timing every choice on this machine:

1. **Transform threads** (``--threads``) for one image coded in this process: encode and
   decode seconds of Kodak-size images for each count in ``--threads`` (default 1, 2, 4,
   ... up to the usable CPUs), the model loaded. The counts take turns image by image, so
   drift on a shared machine falls on all of them alike; the median per count is reported.
2. **Tile workers** (``--workers``) for a large image (``--large``, a mosaic of the same
   images; default 4032x2016, 8 tiles): encode and decode seconds for each worker count,
   each worker process with ``usable CPUs // workers`` transform threads, as the codec
   sets them. The workers are started (and their models loaded) before the timing: a
   single ``aec`` command pays that start once more.

Each row also gives its time relative to the fastest row, and the files of every count
are compared: they must be byte-identical (the codec promises it). The defaults in use
(one transform thread per usable CPU; tile workers: the CPUs, at most 4, for 8 tiles or
more) are marked. Run it on each machine the default must suit:

    python benchmarks/threads.py --out benchmarks/results/threads-2cpu.json

On the lent GPU host (16 CPU cores), with the burst's wheels installed (gpu_burst.py):

    PYTHONPATH=/tmp/site:. python3 benchmarks/threads.py --folder .burst/kodak \\
        --large 8064x4032 --out $OUT/threads-16cpu.json
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import neuralcodec  # noqa: E402, F401  (first: it names the BLAS's kernels before NumPy loads)
from benchmarks._inputs import KODAK  # noqa: E402
from benchmarks._report import save_json  # noqa: E402
from neuralcodec.codec.options import MAX_AUTO_WORKERS, PARALLEL_MIN_TILES  # noqa: E402
from neuralcodec.cpu import blas_description, cpu_model, usable_cpus  # noqa: E402

WITHIN = 0.05  # a count within 5 % of the fastest is as good as it, for a default


def counts_up_to(cpus: int) -> list[int]:
    """1, 2, 4, ... below ``cpus``, and ``cpus`` itself."""
    counts, n = [], 1
    while n < cpus:
        counts.append(n)
        n *= 2
    return [*counts, cpus]


def parse_counts(text: str | None, cpus: int) -> list[int]:
    if not text:
        return counts_up_to(cpus)
    counts = sorted({int(part) for part in text.split(",")})
    if counts[0] < 1:
        sys.exit("counts must be at least 1")
    return counts


def mosaic(images: list, width: int, height: int):
    """A ``width`` x ``height`` image pasted together from ``images``, in turn."""
    from PIL import Image

    out = Image.new("RGB", (width, height))
    k = 0
    for top in range(0, height, images[0].height):
        for left in range(0, width, images[0].width):
            out.paste(images[k % len(images)], (left, top))
            k += 1
    return out


def rank(rows: list[dict], key: str) -> None:
    """Each row's ``key`` relative to the smallest (1.0 = fastest)."""
    best = min(row[key] for row in rows)
    for row in rows:
        row[f"{key}_vs_fastest"] = row[key] / best


def smallest_good(rows: list[dict], name: str) -> int:
    """The smallest count whose encode + decode time is within WITHIN of the fastest."""
    total = {row[name]: row["encode_s"] + row["decode_s"] for row in rows}
    best = min(total.values())
    return min(n for n, t in total.items() if t <= best * (1 + WITHIN))


def time_threads(images: list, counts: list[int], quality: float, repeats: int) -> list[dict]:
    """Question 1: per count, median encode/decode seconds over images x repeats."""
    from neuralcodec import Codec
    from neuralcodec.codec.threads import set_threads

    codec = Codec(device="cpu", workers=1).load()
    files: dict[int, list[bytes]] = {n: [] for n in counts}
    seconds: dict[int, dict[str, list[float]]] = {n: {"encode": [], "decode": []}
                                                  for n in counts}
    for n in counts:  # warm-up: each count's pool made, caches filled
        set_threads(n)
        codec.decode(codec.encode(images[0], quality))
    for round_ in range(repeats):
        for image in images:
            for n in counts if round_ % 2 == 0 else counts[::-1]:
                set_threads(n)
                t0 = time.perf_counter()
                data = codec.encode(image, quality)
                t1 = time.perf_counter()
                codec.decode(data)
                seconds[n]["encode"].append(t1 - t0)
                seconds[n]["decode"].append(time.perf_counter() - t1)
                if round_ == 0:
                    files[n].append(data)
    reference = files[counts[0]]
    rows = [{"threads": n,
             "encode_s": statistics.median(seconds[n]["encode"]),
             "decode_s": statistics.median(seconds[n]["decode"]),
             "identical_files": files[n] == reference} for n in counts]
    rank(rows, "encode_s")
    rank(rows, "decode_s")
    return rows


def time_workers(image, counts: list[int], quality: float, repeats: int,
                 cpus: int) -> list[dict]:
    """Question 2: per worker count, median encode/decode seconds of one large image."""
    from neuralcodec import Codec
    from neuralcodec.codec.threads import set_threads

    set_threads(cpus)  # one worker codes in this process, on every CPU
    codecs = {n: Codec(device="cpu", workers=n).load() for n in counts}
    files, seconds = {}, {n: {"encode": [], "decode": []} for n in counts}
    try:
        for n in counts:  # warm-up: worker processes started, models loaded
            files[n] = codecs[n].encode(image, quality)
            codecs[n].decode(files[n])
        for round_ in range(repeats):
            for n in counts if round_ % 2 == 0 else counts[::-1]:
                t0 = time.perf_counter()
                data = codecs[n].encode(image, quality)
                t1 = time.perf_counter()
                codecs[n].decode(data)
                seconds[n]["encode"].append(t1 - t0)
                seconds[n]["decode"].append(time.perf_counter() - t1)
    finally:
        for codec in codecs.values():
            codec.close()
    rows = [{"workers": n, "threads_each": cpus if n == 1 else max(1, cpus // n),
             "encode_s": statistics.median(seconds[n]["encode"]),
             "decode_s": statistics.median(seconds[n]["decode"]),
             "identical_files": files[n] == files[counts[0]]} for n in counts]
    rank(rows, "encode_s")
    rank(rows, "decode_s")
    return rows


def print_rows(title: str, rows: list[dict], name: str, default: int) -> None:
    print(title)
    print(f"  {name:>8s}  encode s  (vs fastest)  decode s  (vs fastest)  same files")
    for row in rows:
        mark = "  <- default" if row[name] == default else ""
        print(f"  {row[name]:8d}  {row['encode_s']:8.3f}  ({row['encode_s_vs_fastest']:5.2f}x)"
              f"      {row['decode_s']:8.3f}  ({row['decode_s_vs_fastest']:5.2f}x)"
              f"      {'yes' if row['identical_files'] else 'NO'}{mark}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folder", default=os.path.relpath(KODAK), help="images (PNG) to code")
    ap.add_argument("--images", type=int, default=4, help="how many of them")
    ap.add_argument("--quality", type=float, default=75)
    ap.add_argument("--repeats", type=int, default=2, help="rounds over the images")
    ap.add_argument("--threads", default=None,
                    help="transform thread counts, comma-separated [default: 1, 2, 4, ... "
                         "up to the usable CPUs]")
    ap.add_argument("--workers", default=None,
                    help="tile worker counts [default: as --threads]")
    ap.add_argument("--large", default="4032x2016",
                    help="WIDTHxHEIGHT of the tiled image, or 'none' to skip it")
    ap.add_argument("--out", type=Path, default=None, help="also write the figures here (JSON)")
    args = ap.parse_args()

    from PIL import Image

    from neuralcodec.families import numpy_layers

    paths = sorted(Path(args.folder).glob("*.png"))[: args.images]
    if not paths:
        sys.exit(f"no PNG images in {args.folder}")
    images = [Image.open(p).convert("RGB") for p in paths]
    cpus = usable_cpus()
    default_threads = numpy_layers.threads()  # before anything sets it
    result = {
        "environment": {
            "cpu": cpu_model(), "usable_cpus": cpus, "python": platform.python_version(),
            "blas": blas_description(), "images": [p.name for p in paths],
            "quality": args.quality, "repeats": args.repeats,
            "load": "whatever else ran on the machine meanwhile is not controlled here; "
                    "say it in the figure's note"},
        "default_threads": default_threads,
    }

    thread_counts = parse_counts(args.threads, cpus)
    rows = time_threads(images, thread_counts, args.quality, args.repeats)
    result["threads"] = rows
    result["smallest_threads_within_5pc"] = smallest_good(rows, "threads")
    print_rows(f"One image at a time ({images[0].width}x{images[0].height}), in this process; "
               f"{cpus} usable CPUs", rows, "threads", default_threads)

    if args.large != "none":
        width, height = (int(v) for v in args.large.lower().split("x"))
        large = mosaic(images, width, height)
        from neuralcodec import Codec

        tiles = len(Codec(device="cpu").grid(width, height))
        # The codec never starts more workers than tiles: a larger --large for more.
        worker_counts = sorted({min(n, tiles) for n in
                                parse_counts(args.workers or args.threads, cpus)})
        default_workers = (min(cpus, MAX_AUTO_WORKERS, tiles)
                           if tiles >= PARALLEL_MIN_TILES else 1)
        rows = time_workers(large, worker_counts, args.quality, args.repeats, cpus)
        result["large"] = {"size": [width, height], "tiles": tiles,
                           "default_workers": default_workers, "workers": rows,
                           "smallest_workers_within_5pc": smallest_good(rows, "workers")}
        print_rows(f"A {width}x{height} image ({tiles} tiles)", rows, "workers",
                   default_workers)

    print(f"smallest thread count within 5 % of the fastest: "
          f"{result['smallest_threads_within_5pc']} (default {default_threads})")
    if "large" in result:
        print(f"smallest worker count within 5 % of the fastest: "
              f"{result['large']['smallest_workers_within_5pc']} "
              f"(default {result['large']['default_workers']})")
    if args.out:
        save_json(result, args.out)
        print(f"saved {args.out}")


if __name__ == "__main__":
    main()
