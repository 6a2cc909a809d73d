"""Arrays in and out of the torch backends: the codec hands every coder channels-last
NumPy arrays, (h, w, C); torch's transforms take (1, C, h, w) tensors, stored
channels-last (oneDNN's fast layout on the CPU)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def to_tensor(x: np.ndarray, device: torch.device | str) -> Tensor:
    """A channels-last (h, w, C) array as a (1, C, h, w) channels-last tensor on
    ``device``."""
    t = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1).unsqueeze(0)
    return t.to(device).contiguous(memory_format=torch.channels_last)


def to_array(t: Tensor) -> np.ndarray:
    """A (1, C, h, w) tensor as a channels-last (h, w, C) array on the CPU."""
    return np.ascontiguousarray(t[0].permute(1, 2, 0).detach().cpu().numpy())
