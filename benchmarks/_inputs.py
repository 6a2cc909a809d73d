"""What the Kodak benchmarks take: the image folder, the model and how many images."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

KODAK = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "kodak"


def add_image_options(parser: argparse.ArgumentParser, model: str) -> None:
    """``--folder`` (default: Kodak), ``--model`` (default ``model``) and ``--limit``."""
    parser.add_argument("--folder", default=os.path.relpath(KODAK))
    parser.add_argument("--model", default=model)
    parser.add_argument("--limit", type=int, default=None, help="only the first N images")
