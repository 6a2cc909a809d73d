"""Do tile borders show? PSNR in a band along tile borders, tiled against untiled.

Encodes one crop of an image untiled and with small tiles (so that a small image has
many borders) at several overlaps, and compares RGB PSNR inside a band of BAND pixels on
each side of every tile border. The untiled encode of the same band is the reference:
content differs from band to band, the codec does not. Overlap 0 is independent tiles
without the cross-fade.

    python benchmarks/seams.py /tmp/aec-memory/mosaic.png --tile 256 --overlaps 0,8,16,32
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._report import print_and_save  # noqa: E402
from neuralcodec import Codec  # noqa: E402
from neuralcodec.metrics import psnr_from_mse  # noqa: E402

BAND = 4


def _psnr(squared_error: np.ndarray) -> float:
    return round(psnr_from_mse(float(squared_error.mean())), 3)


def border_band(height: int, width: int, tile: int) -> np.ndarray:
    """Pixels within BAND of a border between tiles of side ``tile``."""
    def near(size: int) -> np.ndarray:
        pos = np.arange(size)
        lines = np.arange(tile, size, tile) - 0.5
        return (np.abs(pos[:, None] - lines[None, :]) < BAND).any(axis=1)

    return near(height)[:, None] | near(width)[None, :]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("image", type=Path)
    parser.add_argument("--box", default="3000,2000,4280,3024", help="crop left,top,right,bottom")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlaps", default="0,8,16,32")
    parser.add_argument("--quality", type=float, default=75)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(2)
    Image.MAX_IMAGE_PIXELS = None
    with Image.open(args.image) as im:
        crop = im.crop(tuple(int(v) for v in args.box.split(","))).convert("RGB")
    original = np.asarray(crop, dtype=np.int32)
    band = border_band(*original.shape[:2], args.tile)

    def run(tile: int, overlap: int) -> dict:
        codec = Codec(device="cpu", tile_size=tile, tile_overlap=overlap, workers=1)
        data = codec.encode(crop, args.quality)
        error = ((original - np.asarray(codec.decode(data), dtype=np.int32)) ** 2).mean(axis=2)
        return {"bytes": len(data), "psnr_border_band": _psnr(error[band]),
                "psnr_elsewhere": _psnr(error[~band]), "psnr_whole": _psnr(error)}

    rows = {"untiled": run(2032, 0)}
    for overlap in (int(v) for v in args.overlaps.split(",")):
        rows[f"tile {args.tile}, overlap {overlap}"] = run(args.tile, overlap)
    reference = rows["untiled"]["psnr_border_band"]
    for row in rows.values():
        row["border_band_vs_untiled_db"] = round(row["psnr_border_band"] - reference, 3)
    result = {"image": str(args.image), "box": args.box, "band_px_each_side": BAND,
              "quality": args.quality, "rows": rows}
    print_and_save(result, args.out)


if __name__ == "__main__":
    main()
