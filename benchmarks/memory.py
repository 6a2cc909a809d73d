"""Peak memory and time to encode and decode a ~100-megapixel image, and tile seams.

Builds a 12000x8400 mosaic (100.8 MP) of Kodak images, runs ``aec encode`` and
``aec decode`` on it as a user would (separate processes, default settings), sampling
the memory of the whole process tree (the CLI, the forkserver and the tile workers):
the sum of RSS (counts shared library pages once per process, so it overstates) and
the sum of PSS (shared pages divided among their users: what the machine really holds).
Then compares PSNR in bands across tile borders with the rest of the image.

The mosaic is shifted by half a Kodak image so that no Kodak image border coincides with
a tile border (which would make the seam band harder to code for reasons of content).

    python benchmarks/memory.py --kodak ../shared/datasets/kodak --work /tmp/aec-memory \
        --out benchmarks/results/memory-100mp.json
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._report import print_and_save  # noqa: E402
from neuralcodec.codec.codec import DEFAULT_TILE_SIZE as TILE  # noqa: E402
from neuralcodec.format.inspect import describe  # noqa: E402
from neuralcodec.metrics import psnr_from_mse as _psnr  # noqa: E402

WIDTH, HEIGHT = 12000, 8400
SEAM_BAND = 4  # pixels on each side of a tile border


def build_mosaic(kodak: Path, path: Path) -> None:
    images = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(kodak.glob("*.png"))]
    landscape = [im for im in images if im.shape[:2] == (512, 768)]
    rows, cols = HEIGHT // 512 + 2, WIDTH // 768 + 2  # one spare for the half-image shift
    canvas = np.empty((rows * 512, cols * 768, 3), np.uint8)
    k = 0
    for top in range(0, canvas.shape[0], 512):
        for left in range(0, canvas.shape[1], 768):
            canvas[top:top + 512, left:left + 768] = landscape[k % len(landscape)]
            k += 1
    mosaic = canvas[256:256 + HEIGHT, 384:384 + WIDTH]
    Image.fromarray(np.ascontiguousarray(mosaic)).save(path, compress_level=1)


class TreeMemory:
    """Samples the RSS and PSS sums of a process and its descendants until stopped."""

    def __init__(self, pid: int, interval: float = 0.25):
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak_rss = self.peak_pss = self.peak_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            rss = pss = 0
            for p in procs:
                try:
                    info = p.memory_full_info()
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                rss += info.rss
                pss += info.pss
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_pss = max(self.peak_pss, pss)
            self.peak_processes = max(self.peak_processes, len(procs))
            self._stop.wait(self.interval)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        return {"peak_rss_sum_gb": round(self.peak_rss / 2**30, 3),
                "peak_pss_sum_gb": round(self.peak_pss / 2**30, 3),
                "processes": self.peak_processes}


def run_cli(args: list[str]) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "neuralcodec", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    memory = TreeMemory(proc.pid)
    out, err = proc.communicate()
    result = {"command": "aec " + " ".join(args),
              "wall_seconds": round(time.perf_counter() - t0, 1), **memory.stop(),
              "stdout": out.strip()}
    if proc.returncode:
        raise SystemExit(f"{result['command']} failed: {err}")
    return result


def _run_once(record: Path, args: list[str]) -> dict:
    """run_cli, unless a finished run's record is already in the work folder (the
    analysis can then be redone without re-running a half-hour encode)."""
    if record.exists():
        return json.loads(record.read_text())
    result = run_cli(args)
    record.write_text(json.dumps(result) + "\n")
    print(json.dumps(result), flush=True)
    return result


def seam_psnr(original: Path, decoded: Path) -> dict:
    """RGB PSNR within SEAM_BAND px of the borders between tiles (multiples of the
    default tile size), of the tile mid-lines (a control band of the same shape away
    from borders), and of everything else."""
    Image.MAX_IMAGE_PIXELS = None
    a = np.asarray(Image.open(original).convert("RGB"))
    b = np.asarray(Image.open(decoded).convert("RGB"))
    sq = np.zeros(a.shape[:2], np.float32)
    for top in range(0, HEIGHT, 512):  # in strips to bound memory
        diff = a[top:top + 512].astype(np.int32) - b[top:top + 512]
        sq[top:top + 512] = (diff * diff).mean(axis=2)

    def near(lines: np.ndarray, size: int) -> np.ndarray:
        pos = np.arange(size)
        return (np.abs(pos[:, None] - lines[None, :]) < SEAM_BAND).any(axis=1)

    # Borders between tiles sit at multiples of TILE; the control lines at TILE/2 + k*TILE.
    border_cols = near(np.arange(TILE, WIDTH, TILE) - 0.5, WIDTH)
    border_rows = near(np.arange(TILE, HEIGHT, TILE) - 0.5, HEIGHT)
    mid_cols = near(np.arange(TILE // 2, WIDTH, TILE) - 0.5, WIDTH)
    mid_rows = near(np.arange(TILE // 2, HEIGHT, TILE) - 0.5, HEIGHT)
    seam = border_rows[:, None] | border_cols[None, :]
    control = (mid_rows[:, None] | mid_cols[None, :]) & ~seam
    interior = ~seam
    whole = float(sq.mean(dtype=np.float64))
    return {
        "band_px_each_side": SEAM_BAND,
        "psnr_seam_band": round(_psnr(float(sq[seam].mean(dtype=np.float64))), 3),
        "psnr_midline_band": round(_psnr(float(sq[control].mean(dtype=np.float64))), 3),
        "psnr_outside_seam_band": round(_psnr(float(sq[interior].mean(dtype=np.float64))),
                                        3),
        "psnr_whole": round(_psnr(whole), 3),
        "seam_band_share_of_pixels": round(float(seam.mean()), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kodak", type=Path, default=ROOT.parent / "shared/datasets/kodak")
    parser.add_argument("--work", type=Path, default=Path("/tmp/aec-memory"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    mosaic, aec, decoded = (args.work / n for n in ("mosaic.png", "mosaic.aec", "decoded.png"))
    if not mosaic.exists():
        build_mosaic(args.kodak, mosaic)
    encode = _run_once(args.work / "encode.json", ["encode", str(mosaic), str(aec)])
    decode = _run_once(args.work / "decode.json", ["decode", str(aec), str(decoded)])
    facts = describe(aec.read_bytes())
    result = {
        "image": f"{WIDTH}x{HEIGHT} Kodak mosaic ({WIDTH * HEIGHT / 1e6:.1f} MP)",
        "file": {k: facts[k] for k in ("format_version", "quality", "bytes", "bpp", "tiles")},
        "encode": encode,
        "decode": decode,
        "seams": seam_psnr(mosaic, decoded),
        "machine": {"cpus": psutil.cpu_count(), "memory_gb": round(
            psutil.virtual_memory().total / 2**30, 1), "python": platform.python_version(),
            "load_average_at_end": [round(x, 2) for x in psutil.getloadavg()]},
        "note": args.note,
    }
    print_and_save(result, args.out)


if __name__ == "__main__":
    main()
