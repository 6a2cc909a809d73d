"""Lossless and near-lossless anchors on Kodak: what aec's residual layer (issue 41) must beat.

A thin wrapper: ``aec bench --codecs lossless --no-speed`` on ../shared/datasets/kodak into
benchmarks/results/lossless-kodak/ (the codecs, their settings and the checks of every
decoded file are in :mod:`neuralcodec.bench.classical`); other ``aec bench`` options pass
through (``--max-error 0,1,2,4`` for JPEG-LS's NEAR values, ``--codecs
lossless,aec --max-error ...`` for aec's own rows):

    python benchmarks/lossless_anchors.py --workers 2 --note "..."
    python benchmarks/lossless_anchors.py --limit 4 --out $TMPDIR/lossless4
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # allow running from a checkout without installing
    sys.path.insert(0, str(ROOT))

from benchmarks.kodak_rd import main as kodak_bench  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "lossless-kodak"


def main(argv: list[str]) -> int:
    return kodak_bench(["--codecs", "lossless", "--no-speed", "--out", os.path.relpath(OUT),
                        *argv])  # a later --codecs or --out wins


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
