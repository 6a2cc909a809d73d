"""Data-set throughput: `aec encode DIR -o OUT` with --engine local and --engine ray.

Makes N Kodak-size inputs (768 x 512: the Kodak PNGs of --images cycled to N, or
synthetic photo-like images where that folder is missing), encodes them once with each
engine as a separate `aec` process into fresh folders, and reports the wall time of each
process (Python start, model loading and, for Ray, starting a local cluster included),
images per second and the ratio ray / local, with the machine's load average before and
after each run (the seconds mean little on a busy machine).

    python benchmarks/dataset_throughput.py --n 200
    python benchmarks/dataset_throughput.py --n 8 --out /tmp/dt.json     # a quick check
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._report import print_and_save  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KODAK = ROOT.parent / "shared" / "datasets" / "kodak"
SIZE = (768, 512)


def make_inputs(folder: Path, n: int, images: Path) -> str:
    """N inputs in ``folder``; returns where they came from."""
    folder.mkdir(parents=True)
    sources = sorted(images.glob("*.png")) if images.is_dir() else []
    if sources:
        for i in range(n):
            shutil.copyfile(sources[i % len(sources)], folder / f"img{i:04d}.png")
        return f"{images} ({len(sources)} PNGs cycled)"
    from PIL import Image

    from tests.helpers import photo_like

    for i in range(n):
        Image.fromarray(photo_like(*SIZE, seed=i), "RGB").save(folder / f"img{i:04d}.png")
    return f"synthetic photo-like {SIZE[0]}x{SIZE[1]} images"


def run_engine(engine: str, inputs: Path, out: Path, quality: float,
               workers: int | None, threads: int | None) -> dict:
    command = [sys.executable, "-m", "neuralcodec", "encode", str(inputs), "-o", str(out),
               "-q", str(quality), "--engine", engine]
    if workers is not None:
        command += ["--workers", str(workers)]
    if threads is not None:
        command += ["--threads", str(threads)]
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{engine} failed ({proc.returncode}): {proc.stderr.strip()}")
    with open(out / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    coded = sum(row["status"] == "done" for row in rows)
    return {
        "command": " ".join(command[1:]),
        "images": coded,
        "wall_seconds": round(seconds, 2),
        "images_per_second": round(coded / seconds, 3),
        "summary": proc.stdout.strip(),
        "bytes": sum(int(row["bytes"]) for row in rows),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200, help="number of images")
    parser.add_argument("--images", type=Path, default=KODAK,
                        help="folder of PNGs to cycle (synthetic images if missing)")
    parser.add_argument("--quality", type=float, default=75)
    parser.add_argument("--workers", type=int, default=None,
                        help="Ray actors [default: one per CPU]")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (local: of the process; ray: of each actor) "
                             "[default: local one per core, ray each actor's CPU share]")
    parser.add_argument("--engines", default="local,ray")
    parser.add_argument("--work", type=Path, default=None,
                        help="scratch folder [default: a temporary one, removed after]")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "dataset_throughput.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aec-dataset-", dir=args.work))
    try:
        origin = make_inputs(work / "in", args.n, args.images)
        runs = {engine: run_engine(engine, work / "in", work / f"out-{engine}", args.quality,
                                   args.workers, args.threads)
                for engine in args.engines.split(",")}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "images": args.n,
        "inputs": origin,
        "quality": args.quality,
        "threads": args.threads,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "runs": runs,
    }
    if "local" in runs and "ray" in runs:
        result["ray_over_local"] = round(
            runs["ray"]["images_per_second"] / runs["local"]["images_per_second"], 3)
    print_and_save(result, args.out)


if __name__ == "__main__":
    main()
