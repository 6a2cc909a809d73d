"""Writing decoded images as PNG: time and size with Pillow's default zlib settings
versus the options ``aec decode`` uses (``neuralcodec.io.images.PNG_SAVE_OPTIONS``).

    python benchmarks/png_write.py --images ../shared/datasets/kodak --quality 60

Each image is encoded and decoded by aec at ``--quality``, then written to memory with
each setting; the time per write is the fastest of ``--repeat`` writes.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._report import save_json  # noqa: E402
from neuralcodec import Codec  # noqa: E402
from neuralcodec.io.images import PNG_SAVE_OPTIONS  # noqa: E402

SETTINGS = {"pillow-default": {}, "aec": PNG_SAVE_OPTIONS}


def write_png(im: Image.Image, options: dict, repeat: int) -> tuple[float, int]:
    """(fastest seconds, bytes) of writing ``im`` as PNG with ``options``."""
    best, size = float("inf"), 0
    for _ in range(repeat):
        buffer = io.BytesIO()
        start = time.perf_counter()
        im.save(buffer, format="PNG", **options)
        best = min(best, time.perf_counter() - start)
        size = buffer.tell()
    return best, size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default=str(ROOT.parent / "shared" / "datasets" / "kodak"))
    ap.add_argument("--limit", type=int, default=24)
    ap.add_argument("--quality", type=float, default=60)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--note", default="")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "png-write.json"))
    args = ap.parse_args()
    codec = Codec(device="cpu")
    paths = sorted(Path(args.images).glob("*.png"))[: args.limit]
    if not paths:
        sys.exit(f"png_write: no PNG images in {args.images}")
    totals = {name: [0.0, 0] for name in SETTINGS}
    rows = []
    for path in paths:
        decoded = codec.decode(codec.encode(Image.open(path).convert("RGB"), args.quality))
        row = {"image": path.name}
        for name, options in SETTINGS.items():
            seconds, size = write_png(decoded, options, args.repeat)
            row[name] = {"seconds": seconds, "bytes": size}
            totals[name][0] += seconds
            totals[name][1] += size
        rows.append(row)
        print(f"{path.name}: " + "  ".join(
            f"{name} {row[name]['seconds'] * 1000:.0f} ms {row[name]['bytes']} B"
            for name in SETTINGS), flush=True)
    (base_s, base_b), (aec_s, aec_b) = totals["pillow-default"], totals["aec"]
    summary = {"pillow_default_ms_per_image": 1000 * base_s / len(paths),
               "aec_ms_per_image": 1000 * aec_s / len(paths),
               "speedup": base_s / aec_s, "size_change_percent": 100 * (aec_b / base_b - 1)}
    print(f"{len(paths)} images decoded at quality {args.quality:g}: Pillow default "
          f"{summary['pillow_default_ms_per_image']:.0f} ms/image, aec "
          f"{summary['aec_ms_per_image']:.0f} ms/image ({summary['speedup']:.1f}x), "
          f"size {summary['size_change_percent']:+.2f} %")
    save_json({"quality": args.quality, "options": {k: str(v) for k, v in SETTINGS.items()},
               "note": args.note, "summary": summary, "images": rows}, Path(args.out))


if __name__ == "__main__":
    main()
