"""Lossless and near-lossless anchors on Kodak: what aec's residual layer (issue 41) must beat.

Whole-file bits per pixel of each classical codec, per image and the mean:

* PNG (Pillow, ``optimize=True``);
* WebP lossless (libwebp, method 6, quality 100), the ``--lossless`` target;
* JPEG XL lossless (libjxl, effort 7);
* JPEG-LS (CharLS) lossless and NEAR = K for each ``--near`` K, the ``--max-error K``
  targets; CharLS codes R, G and B without a colour transform here.

Every file is decoded back: lossless ones must equal the image, JPEG-LS NEAR=K files must
be within K of it in every sample, otherwise the script stops (a size is reported only for
a file that keeps its promise). Decode seconds (one thread, best of one) are recorded as a
rough reference for the residual layer's 2 s decode target. WebP, JXL and JPEG-LS come
from ``imagecodecs`` (the ``bench`` extra).

    python benchmarks/lossless_anchors.py                 # all 24 Kodak images
    python benchmarks/lossless_anchors.py --limit 4
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # allow running from a checkout without installing
    sys.path.insert(0, str(ROOT))

from benchmarks._inputs import KODAK  # noqa: E402
from benchmarks._report import save_json  # noqa: E402

Codec = tuple[Callable[[np.ndarray], bytes], Callable[[bytes], np.ndarray], int]


def _png_encode(x: np.ndarray) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(x).save(out, format="PNG", optimize=True)
    return out.getvalue()


def _png_decode(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)))


def codecs(nears: list[int]) -> dict[str, Codec]:
    """Name -> (encode, decode, the largest error the codec promises)."""
    import imagecodecs as ic

    table: dict[str, Codec] = {
        "png": (_png_encode, _png_decode, 0),
        "webp-lossless-m6": (
            lambda x: ic.webp_encode(x, level=100, lossless=True, method=6, numthreads=1),
            ic.webp_decode, 0),
        "jxl-lossless-e7": (
            lambda x: ic.jpegxl_encode(x, lossless=True, effort=7, numthreads=1),
            lambda d: ic.jpegxl_decode(d, numthreads=1), 0),
        "jpegls-lossless": (lambda x: ic.jpegls_encode(x, level=0), ic.jpegls_decode, 0),
    }
    for k in nears:
        table[f"jpegls-near{k}"] = (lambda x, k=k: ic.jpegls_encode(x, level=k),
                                    ic.jpegls_decode, k)
    return table


def measure(x: np.ndarray, codec: Codec, name: str) -> dict[str, float]:
    encode, decode, promise = codec
    data = encode(x)
    start = time.perf_counter()
    back = decode(data)
    seconds = time.perf_counter() - start
    if back.shape != x.shape:
        raise SystemExit(f"{name}: decoded shape {back.shape} != {x.shape}")
    error = int(np.abs(back.astype(np.int16) - x.astype(np.int16)).max())
    if error > promise:
        raise SystemExit(f"{name}: max error {error} > {promise}")
    return {"bytes": len(data), "bpp": 8 * len(data) / (x.shape[0] * x.shape[1]),
            "max_error": error, "decode_s": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default=str(KODAK))
    parser.add_argument("--limit", type=int, default=None, help="only the first N images")
    parser.add_argument("--near", default="1,2,4", help="JPEG-LS NEAR values")
    parser.add_argument("--save", default="benchmarks/results/lossless-anchors-kodak.json")
    parser.add_argument("--note", default="")
    args = parser.parse_args()

    import imagecodecs
    from PIL import Image

    nears = [int(k) for k in args.near.split(",") if k]
    table = codecs(nears)
    paths = sorted(Path(args.folder).glob("*.png"))[: args.limit]
    if not paths:
        raise SystemExit(f"no PNG images in {args.folder}")
    images: dict[str, dict[str, dict[str, float]]] = {}
    for path in paths:
        x = np.asarray(Image.open(path).convert("RGB"))
        images[path.stem] = {name: measure(x, codec, name) for name, codec in table.items()}
        print(path.stem, "  ".join(f"{n} {r['bpp']:.3f}" for n, r in images[path.stem].items()),
              flush=True)
    mean = {name: float(np.mean([images[i][name]["bpp"] for i in images])) for name in table}
    result = {
        "what": "whole-file bits per pixel of classical lossless / near-lossless codecs",
        "images": len(images), "folder": Path(args.folder).name,
        "versions": {"imagecodecs": imagecodecs.__version__},
        "note": args.note, "mean_bpp": mean, "per_image": images,
    }
    save_json(result, Path(args.save))
    print(f"\n{'codec':<20} {'mean bpp':>9}  (over {len(images)} images)")
    for name, value in mean.items():
        print(f"{name:<20} {value:9.3f}")


if __name__ == "__main__":
    main()
