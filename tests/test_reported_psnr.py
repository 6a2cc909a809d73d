"""Every PSNR aec prints or records is measured against the image it coded: the input
after the conversions its notes announce (here a 16-bit gray image reduced to 8 bits),
both sides in RGB."""

from __future__ import annotations

import csv
import re

import numpy as np
from PIL import Image

from neuralcodec.cli import run
from neuralcodec.metrics import psnr

from .helpers import photo_like


def _gray16(path) -> np.ndarray:
    """A 16-bit gray PNG at ``path``; returns the 8-bit image aec codes (full scale to
    full scale: samples / 257)."""
    samples = photo_like(48, 40, seed=5)[..., 1].astype(np.uint16) * 257 + 100
    Image.fromarray(samples).save(path)
    with Image.open(path) as im:
        assert im.mode == "I;16"
    return np.round(samples / 257).astype(np.uint8)


def _true_psnr(coded: np.ndarray, decoded_path) -> float:
    with Image.open(decoded_path) as back:
        return psnr(np.stack([coded] * 3, -1), np.asarray(back.convert("RGB")))


def test_print_psnr_of_a_16_bit_image_is_against_what_was_coded(tmp_path, capsys):
    src, aec, out = tmp_path / "g16.png", tmp_path / "g16.aec", tmp_path / "back.png"
    coded = _gray16(src)
    assert run(["encode", str(src), str(aec), "-v"]) == 0
    captured = capsys.readouterr()
    assert "reduced to 8-bit grayscale" in captured.err
    printed = float(re.search(r"PSNR ([\d.]+) dB", captured.out)[1])
    assert run(["decode", str(aec), str(out)]) == 0
    assert printed > 30 and abs(printed - _true_psnr(coded, out)) < 0.01


def test_a_data_sets_manifest_records_the_same_psnr(tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    coded = _gray16(folder / "g16.png")
    assert run(["encode", str(folder), "-o", str(out), "-v", "--quiet"]) == 0
    with open(out / "manifest.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert "reduced to 8-bit grayscale" in row["notes"]
    assert run(["decode", str(out / "g16.aec"), str(tmp_path / "back.png")]) == 0
    assert abs(float(row["psnr"]) - _true_psnr(coded, tmp_path / "back.png")) < 0.01
