"""Pixels to and from the float arrays the transforms take, and padding to a family's
downsampling multiple. Arrays are channels-last, (H, W, 3) float32 in [0, 1]."""

from __future__ import annotations

import numpy as np
from PIL import Image


def image_to_array(im: Image.Image) -> np.ndarray:
    """L or RGB image -> (H, W, 3) float32 in [0, 1]; grayscale is replicated."""
    return np.asarray(im.convert("RGB"), dtype=np.float32) / np.float32(255.0)


def array_to_image(x: np.ndarray, mode: str) -> Image.Image:
    """(H, W, 3) array, nominally in [0, 1] -> image in ``mode`` (L or RGB); values
    are clipped and rounded to the nearest level (ties to even)."""
    levels = np.round(np.clip(x, 0, 1) * np.float32(255.0)).astype(np.uint8)
    im = Image.fromarray(np.ascontiguousarray(levels), "RGB")
    return im.convert("L") if mode == "L" else im


def pad(x: np.ndarray, multiple: int) -> np.ndarray:
    """Pad the bottom and right edges of an (H, W, C) array by replication up to a
    multiple of ``multiple``."""
    h, w = x.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, ph), (0, pw), (0, 0)), mode="edge")


def padded_size(width: int, height: int, multiple: int) -> tuple[int, int]:
    """(H, W) of an image of this size padded up to ``multiple``."""
    return -(-height // multiple) * multiple, -(-width // multiple) * multiple
