"""NumPy 1 and 2 write and read the same latents (and the exact synthesis's pixels).

`pip install neuralcodec` without the torch extra resolves NumPy 2 (only CompressAI, in the torch
extra, pins NumPy 1), while the test environment has NumPy 1: a virtual environment on top
of this one (its packages after the new one's), with NumPy 2 installed into it, digests
the same files (``benchmarks/file_digests.py``) and compares them with this interpreter's.
Skipped where NumPy 2 cannot be installed (no package index).
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neuralcodec.codec.residual_layer import residual_layer_here

from .golden.make_golden import RECORD, UNPREFIXED
from .helpers import photo_like

ROOT = Path(__file__).resolve().parent.parent
DIGESTS = ROOT / "benchmarks" / "file_digests.py"


def test_numpy_2_reads_numpy_1s_files_to_the_same_latents(tmp_path):
    if np.__version__.startswith("2."):
        pytest.skip("this environment already has NumPy 2")
    venv = tmp_path / "numpy2"
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True,
                          text=True)
    python = venv / "bin" / "python"
    if made.returncode:
        pytest.skip(f"no virtual environment here: {made.stderr.strip()[-200:]}")
    # On top of this environment (itself perhaps a virtual one, as in CI): its packages
    # come after the new environment's own, so the NumPy installed there wins.
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    inner = subprocess.run([str(python), "-c", where], capture_output=True, text=True,
                           check=True).stdout.strip()
    ours = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    (Path(inner) / "outer-environment.pth").write_text("\n".join(sorted(ours)) + "\n")
    got = subprocess.run([str(python), "-m", "pip", "install", "-q", "numpy>=2,<3"],
                         capture_output=True, text=True)
    if got.returncode:
        pytest.skip(f"NumPy 2 not installable here: {got.stderr.strip()[-200:]}")
    images = tmp_path / "images"
    images.mkdir()
    for i, (w, h) in enumerate([(96, 64), (130, 72)]):
        Image.fromarray(photo_like(w, h, seed=20 + i), "RGB").save(images / f"{i}.png")
    args = ["--folder", str(images), "--qualities", "10,60,95"]
    mine = tmp_path / "numpy1.json"
    subprocess.run([sys.executable, str(DIGESTS), *args, "--save", str(mine)], check=True,
                   capture_output=True)
    other = tmp_path / "numpy2.json"
    done = subprocess.run([str(python), str(DIGESTS), *args, "--save", str(other),
                           "--compare", str(mine)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    theirs = json.loads(other.read_text())
    assert theirs["environment"]["numpy"].startswith("2.")
    golden = json.loads(RECORD.read_text())  # every golden file of the default model
    expected = sum(entry.get("model", UNPREFIXED) == UNPREFIXED for entry in golden.values())
    # 2 images at 3 qualities, and with the residual layer at K = 0 and 2 where its
    # model is installed (whose decoded pixels are then compared exactly)
    residual = 4 if residual_layer_here(UNPREFIXED) else 0
    assert len(theirs["files"]) == 6 + residual and len(theirs["golden"]) == expected
    # ... and the exact synthesis's pixels were compared (equal, or the run had failed)
    assert all("exact_pixels" in d for d in [*theirs["files"].values(),
                                             *theirs["golden"].values()])
    # aec-of's golden files (its encoder is a fit of minutes: only its decoding here)
    of_mine, of_theirs = tmp_path / "of1.json", tmp_path / "of2.json"
    subprocess.run([sys.executable, str(DIGESTS), "--model", "aec-of", "--limit", "0",
                    "--save", str(of_mine)], check=True, capture_output=True)
    done = subprocess.run([str(python), str(DIGESTS), "--model", "aec-of", "--limit", "0",
                           "--save", str(of_theirs), "--compare", str(of_mine)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    decoded = json.loads(of_theirs.read_text())["golden"]
    assert decoded and all(d["latents"] == d["recorded_latents"] for d in decoded.values())
