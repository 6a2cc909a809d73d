"""Decoding time of the overfitted family in NumPy only (issue 42: <= 1 s per Kodak image on
2 cores): the parameters and latents range-decoded under the exact ARM, then upsampling
and synthesis. Takes the fits saved by ``overfit_probe.py --save-models`` (integer
latents and parameters); ``--tile N`` repeats a crop's pyramid N x N (a 384x256 crop
tiled 2x2 is a Kodak-sized image with that image's statistics). Also checks that 1 and 2
threads decode the same latents.

    python benchmarks/overfit_decode.py /tmp/models/*.npz --tile 2 --out RESULT.json
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # allow running from a checkout without installing
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from benchmarks._report import print_and_save  # noqa: E402
from neuralcodec.families.overfitted.architecture import DEFAULT  # noqa: E402
from neuralcodec.families.overfitted.coding import (  # noqa: E402
    decode_model_latents,
    encode_model,
)
from neuralcodec.families.overfitted.numpy_synthesis import synthesize  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--tile", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="best of N decodes")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    for path in args.models:
        saved = np.load(path)
        latents = [np.tile(saved[f"latent{i}"], (args.tile, args.tile))
                   for i in range(DEFAULT.levels)]
        steps = dict(zip(DEFAULT.parameter_groups, saved["steps"].tolist(), strict=True))
        params = {name: (saved[f"param:{name}"], steps[group])
                  for name, (_, group) in DEFAULT.parameter_layout().items()}
        coded = encode_model(DEFAULT, latents, params, steps)
        h, w = latents[0].shape
        row = {"model": path.name, "size": [h, w], "bytes": coded.num_bytes}
        decoded = {}
        for threads in (1, 2):
            with threadpool_limits(threads, user_api="blas"):
                best = {"latents_s": 1e9, "synthesis_s": 1e9}
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    back_params, back = decode_model_latents(DEFAULT, coded, h, w)
                    t1 = time.perf_counter()
                    synthesize(DEFAULT, back, back_params)
                    t2 = time.perf_counter()
                    best = {"latents_s": min(best["latents_s"], t1 - t0),
                            "synthesis_s": min(best["synthesis_s"], t2 - t1)}
            decoded[threads] = back
            row[f"threads_{threads}"] = {k: round(v, 3) for k, v in best.items()}
        row["latents_exact"] = all(np.array_equal(a, b) for a, b in zip(latents, decoded[1],
                                                                          strict=True))
        row["same_latents_1_and_2_threads"] = all(
            np.array_equal(a, b) for a, b in zip(decoded[1], decoded[2], strict=True))
        rows.append(row)
    print_and_save({"command": "python benchmarks/overfit_decode.py " + " ".join(sys.argv[1:]),
                    "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, NumPy "
                               f"{np.__version__}",
                    "date": time.strftime("%Y-%m-%d"), "runs": rows}, args.out)


if __name__ == "__main__":
    main()
