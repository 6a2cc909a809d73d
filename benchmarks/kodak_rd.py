"""Kodak benchmark: ``aec bench`` on ../shared/datasets/kodak into benchmarks/results/kodak/.

A thin wrapper over :mod:`neuralcodec.bench` (the harness) that fixes the folder and the
output of the committed results; any other ``aec bench`` options pass through:

    python benchmarks/kodak_rd.py --workers 2 --note "shared 2-core machine"
    python benchmarks/kodak_rd.py --quick --out /tmp/kodak-quick
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # allow running from a checkout without installing
    sys.path.insert(0, str(ROOT))

from neuralcodec.cli import run  # noqa: E402

KODAK = ROOT.parent / "shared" / "datasets" / "kodak"
OUT = ROOT / "benchmarks" / "results" / "kodak"


def main(argv: list[str]) -> int:
    # Relative paths keep the results free of this machine's layout.
    folder, out = os.path.relpath(KODAK), os.path.relpath(OUT)
    return run(["bench", folder, "--out", out, *argv])  # a later --out wins


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
