"""The model's coder on its NumPy transforms backend against the same coder on torch, on
Kodak.

On the CPU a file's bits come from NumPy's float arithmetic in ``g_a``/``h_a`` and its
pixels from NumPy's ``g_s``; the torch backend codes on CUDA and for encoder effort. Both
must make equally good files and read each other's files to the same latents. Per image
and quality (effort 1, one tile), this codes the image on each backend and reports:

* the BD-rate of the NumPy backend's files against the torch backend's (whole payload
  bits per pixel, RGB PSNR of each one's own decode), mean and extremes per image;
* how many files are byte-identical, and, decoding the NumPy backend's files with both,
  whether the latents agree (they must: the parameter path is exact) and the largest
  pixel difference (float rounding in ``g_s``).

    python benchmarks/numpy_coder.py                 # all 24 Kodak images
    python benchmarks/numpy_coder.py --limit 4
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# torch's OpenMP threads would otherwise spin after each torch call and starve NumPy's.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # allow running from a checkout without installing
    sys.path.insert(0, str(ROOT))

import neuralcodec  # noqa: E402, F401  (first: it names the BLAS's kernels before NumPy loads)
from benchmarks._inputs import add_image_options  # noqa: E402
from benchmarks._report import print_and_save  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_image_options(parser, "aec-hp-ckbd")
    parser.add_argument("--qualities", default="0,10,20,30,40,50,60,70,80,90,100")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--save", default="benchmarks/results/numpy-coder-kodak.json")
    parser.add_argument("--note", default="")
    args = parser.parse_args()

    import numpy as np
    from PIL import Image

    from neuralcodec.codec.codec import rate_point
    from neuralcodec.codec.threads import set_threads
    from neuralcodec.codec.tiles import decode_tile, encode_tile
    from neuralcodec.families.zoo import load_coder
    from neuralcodec.format import container
    from neuralcodec.format.quality import to_stored
    from neuralcodec.io.arrays import padded_size
    from neuralcodec.metrics import bd_rate, psnr

    set_threads(args.threads)
    coders = {backend: load_coder(args.model, "cpu", backend) for backend in ("numpy", "torch")}
    qualities = [float(q) for q in args.qualities.split(",")]
    paths = sorted(Path(args.folder).glob("*.png"))[: args.limit]
    images, identical, files, latents_equal, max_pixel_diff = [], 0, 0, True, 0
    for path in paths:
        image = Image.open(path).convert("RGB")
        pixels = np.asarray(image)
        size = padded_size(image.width, image.height, coders["numpy"].pad_multiple)
        row = {"image": path.name, "bpp": {}, "psnr": {}}
        for q in qualities:
            stored = rate_point(to_stored(q))
            chunks = {name: encode_tile(c, image, stored, container.VERSION)
                      for name, c in coders.items()}
            files += 1
            identical += chunks["numpy"] == chunks["torch"]
            for name, c in coders.items():
                bits = 8 * sum(len(v) for v in chunks[name].values())
                out = decode_tile(c, chunks[name], image.size, stored, container.VERSION, "RGB")
                row["bpp"].setdefault(name, []).append(bits / (image.width * image.height))
                row["psnr"].setdefault(name, []).append(psnr(pixels, np.asarray(out)))
            # The NumPy backend's file read on both backends: same latents, close pixels.
            a, b = (c.decompress_latents(chunks["numpy"], size, stored, container.VERSION)
                    for c in coders.values())
            latents_equal &= bool(np.array_equal(a.y_symbols, b.y_symbols)
                                  and np.array_equal(a.z_symbols, b.z_symbols))
            pa, pb = (np.asarray(decode_tile(c, chunks["numpy"], image.size, stored,
                                             container.VERSION, "RGB"), np.int16)
                      for c in coders.values())
            max_pixel_diff = max(max_pixel_diff, int(np.abs(pa - pb).max()))
        row["bd_rate_numpy_vs_torch_percent"] = bd_rate(
            row["bpp"]["torch"], row["psnr"]["torch"], row["bpp"]["numpy"], row["psnr"]["numpy"])
        images.append(row)
        print(f"{path.name}: BD-rate {row['bd_rate_numpy_vs_torch_percent']:+.3f} %",
              flush=True)
    mean = {name: (np.mean([r["bpp"][name] for r in images], 0).tolist(),
                   np.mean([r["psnr"][name] for r in images], 0).tolist()) for name in coders}
    bd = [r["bd_rate_numpy_vs_torch_percent"] for r in images]
    result = {
        "model": args.model, "qualities": qualities, "threads": args.threads,
        "bd_rate_of_mean_curves_percent": bd_rate(*mean["torch"], *mean["numpy"]),
        "bd_rate_per_image_percent": {"mean": float(np.mean(bd)), "min": float(min(bd)),
                                      "max": float(max(bd))},
        "identical_files": f"{identical} of {files}",
        "numpy_files_decode_to_the_same_latents_in_torch": latents_equal,
        "largest_pixel_difference_numpy_vs_torch_decoder": max_pixel_diff,
        "mean_curves": {name: {"bpp": b, "psnr": p} for name, (b, p) in mean.items()},
        "images": images,
        "note": args.note,
    }
    print_and_save(result, Path(args.save) if args.save else None)


if __name__ == "__main__":
    main()
