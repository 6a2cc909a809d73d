"""How far the golden files' decoded pixels move with the thread count and the backend.

Decodes every golden file (tests/golden/) with each model's default CPU backend at 1
and 2 threads and with the torch backend, and prints, per file and setting, whether the
latents match the recorded checksum and the largest difference from the recorded pixels
(``tests/golden/pixels/NAME.png``, in levels of 255). The golden test's tolerance
(``PIXEL_TOLERANCE`` in tests/test_golden.py) is the bound these figures support.

    python benchmarks/golden_pixels.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import neuralcodec  # noqa: E402, F401  (first: it names the BLAS's kernels before NumPy loads)
from tests.golden.make_golden import (  # noqa: E402
    PIXELS,
    RECORD,
    UNPREFIXED,
    decoded_latents,
    latent_checksum,
)


def main() -> None:
    import numpy as np
    from PIL import Image

    from neuralcodec import Codec
    from neuralcodec.codec.threads import set_threads
    from neuralcodec.families.zoo import load_coder

    record = json.loads(RECORD.read_text())
    settings = [("default backend, 1 thread", 1, None), ("default backend, 2 threads", 2, None),
                ("torch backend, 2 threads", 2, "torch")]
    worst: dict[str, int] = {}
    for label, threads, backend in settings:
        set_threads(threads)
        codecs: dict[str, Codec] = {}
        print(f"== {label}")
        for name, entry in record.items():
            model = entry.get("model", UNPREFIXED)
            codec = codecs.get(model)
            if codec is None:
                codec = codecs[model] = Codec(model=model, device="cpu", workers=1)
                if backend is not None:  # the codec's cache of loaded models
                    codec._coders[model] = load_coder(model, "cpu", backend)
            data = (RECORD.parent / name).read_bytes()
            same = latent_checksum(decoded_latents(codec, data)) == entry["latent_sha256"]
            got = np.asarray(codec.decode(data), dtype=np.int16)
            want = np.asarray(Image.open(PIXELS / f"{name}.png"), dtype=np.int16)
            diff = int(np.abs(got - want).max())
            worst[label] = max(worst.get(label, 0), diff)
            print(f"  {name:34s} latents {'same' if same else 'DIFFER'}, "
                  f"max pixel difference {diff}")
    for label, diff in worst.items():
        print(f"largest difference, {label}: {diff}")


if __name__ == "__main__":
    main()
