"""Entropy-coding overhead: real .aec bytes versus the model's own likelihood estimate.

A large gap would mean the coder or its tables waste bits; a few percent is the usual cost
of quantized scale tables and 16-bit CDFs.

    python benchmarks/coding_overhead.py --limit 4
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._report import save_json  # noqa: E402
from neuralcodec import Codec  # noqa: E402
from neuralcodec.codec.codec import rate_point  # noqa: E402
from neuralcodec.families.hyperprior import PAD_MULTIPLE  # noqa: E402
from neuralcodec.families.hyperprior.architecture import ModelConfig  # noqa: E402
from neuralcodec.families.hyperprior.weights import read_state  # noqa: E402
from neuralcodec.families.torch_arrays import to_tensor  # noqa: E402
from neuralcodec.families.zoo import find_model  # noqa: E402
from neuralcodec.format.quality import to_stored  # noqa: E402
from neuralcodec.io.arrays import image_to_array, pad  # noqa: E402
from neuralcodec.training.hyperprior import new_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default=str(ROOT.parent / "shared" / "datasets" / "kodak"))
    ap.add_argument("--limit", type=int, default=4)
    ap.add_argument("--qualities", default="0,50,100")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "coding-overhead.json"))
    args = ap.parse_args()
    codec = Codec(device="cpu").load()
    # The likelihoods come from the trainable entropy models, loaded with the same weights.
    info = find_model(codec.model_name)
    model = new_model(ModelConfig.from_dict(info.card["config"]))
    model.load_state_dict(read_state(info)[0])
    model.eval()
    rows = []
    for path in sorted(Path(args.images).glob("*.png"))[: args.limit]:
        image = Image.open(path).convert("RGB")
        for q in (float(v) for v in args.qualities.split(",")):
            data = codec.encode(image, q)
            level = rate_point(to_stored(q)).level(model.config.levels)
            with torch.no_grad():
                x = to_tensor(pad(image_to_array(image), PAD_MULTIPLE), "cpu")
                out = model(x, torch.tensor([level]))
            bits = sum(float((-torch.log2(lik)).sum()) for lik in out["likelihoods"].values())
            rows.append({"image": path.name, "quality": q, "file_bytes": len(data),
                         "estimated_bytes": bits / 8, "overhead": 8 * len(data) / bits - 1})
            r = rows[-1]
            print(f"{path.name} q{q:g}: file {r['file_bytes']} B, estimate "
                  f"{r['estimated_bytes']:.0f} B, overhead {100 * r['overhead']:+.2f} %")
    mean = sum(r["overhead"] for r in rows) / len(rows)
    print(f"mean overhead {100 * mean:+.2f} % over {len(rows)} encodes")
    save_json({"mean_overhead": mean, "rows": rows}, Path(args.out))


if __name__ == "__main__":
    main()
