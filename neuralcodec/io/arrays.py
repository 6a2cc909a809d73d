"""Pixels to and from the float tensors the transforms take, and padding to a family's
downsampling multiple."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def image_to_tensor(im: Image.Image) -> torch.Tensor:
    """L or RGB image -> (1, 3, H, W) float32 in [0, 1]; grayscale is replicated."""
    arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()


def tensor_to_image(x: torch.Tensor, mode: str) -> Image.Image:
    """(1, 3, H, W) tensor in [0, 1] -> image in ``mode`` (L or RGB)."""
    arr = (x[0].clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    im = Image.fromarray(np.ascontiguousarray(arr), "RGB")
    return im.convert("L") if mode == "L" else im


def pad(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the bottom and right edges by replication up to a multiple of ``multiple``."""
    h, w = x.shape[2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (0, pw, 0, ph), mode="replicate")


def padded_size(width: int, height: int, multiple: int) -> tuple[int, int]:
    """(H, W) of an image of this size padded up to ``multiple``."""
    return -(-height // multiple) * multiple, -(-width // multiple) * multiple
