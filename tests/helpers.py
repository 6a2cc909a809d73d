"""Helpers the tests import: synthetic photo-like images and a thread-count context."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch


def photo_like(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients, edges and mild noise: compressible like a photo, unlike pure noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    img = np.empty((height, width, 3))
    for c in range(3):
        fx, fy = rng.uniform(0.005, 0.05, 2)
        img[..., c] = 128 + 80 * np.sin(xx * fx + c) * np.cos(yy * fy - c)
    img[(xx - width / 2) ** 2 + (yy - height / 3) ** 2 < (min(width, height) / 4) ** 2] = (
        200, 60, 40)
    img += rng.normal(0, 4, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with torch using n threads, restoring the previous count after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def save_photo(path: Path, width: int, height: int, seed: int = 0) -> Path:
    """A photo-like RGB image saved at ``path`` (format from the suffix)."""
    from PIL import Image

    Image.fromarray(photo_like(width, height, seed), "RGB").save(path)
    return path
