"""The hyperprior's transforms in torch (:class:`~..transforms.Transforms`): the family's
torch model (:mod:`.model`, or a family's subclass of it) on any device. The backend for
CUDA, and the one encoder effort asks for (its refinement needs gradients); images and
latents still cross it as NumPy arrays, channels-last.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..torch_arrays import to_array, to_tensor
from .model import HyperpriorCheckerboard


class TorchTransforms:
    """A loaded torch model's transforms. ``features`` and ``y`` stay tensors on its
    device; ``model`` is there for what only torch does (refinement, the version-1
    float parameter path)."""

    backend = "torch"

    def __init__(self, model: HyperpriorCheckerboard):
        # A coding model is never trained: refinement then differentiates with respect
        # to the latents only, not every weight.
        model.eval().requires_grad_(False)
        # The transforms run channels-last: about 1.7x faster on CPU (oneDNN's layout).
        for transform in (model.g_a, model.g_s):
            transform.to(memory_format=torch.channels_last)
        self.model = model

    @property
    def device(self) -> str:
        return str(next(self.model.parameters()).device)

    def level_tensor(self, level: float) -> Tensor:
        return torch.tensor([level], device=self.device)

    @torch.inference_mode()
    def analyse(self, x: np.ndarray) -> Tensor:
        return self.model.g_a(to_tensor(x, self.device))

    @torch.inference_mode()
    def analyse_batch(self, xs: list[np.ndarray]) -> list[Tensor]:
        """``analyse`` of equal-sized images in one call (pays on CUDA)."""
        y = self.model.g_a(torch.cat([to_tensor(x, self.device) for x in xs]))
        return [y[i:i + 1] for i in range(len(xs))]

    @torch.no_grad()
    def latents(self, features: Tensor | np.ndarray, level: float) -> Tensor:
        if isinstance(features, np.ndarray):  # analysed by another backend
            features = to_tensor(features, self.device)
        return features * self.model.gain_y(self.level_tensor(level))

    @torch.no_grad()
    def hyper_analyse(self, y: Tensor, level: float) -> np.ndarray:
        return to_array(self.model.hyper_analysis(y, self.level_tensor(level)).double())

    def as_array(self, y: Tensor) -> np.ndarray:
        return to_array(y.double())

    @torch.inference_mode()
    def synthesis(self, y_hat: np.ndarray, level: float) -> Tensor:
        """``g_s`` of decoded latents as a tensor (1, 3, H, W) on the device."""
        return self.model.synthesis(to_tensor(y_hat, self.device), self.level_tensor(level))

    def synthesize(self, y_hat: np.ndarray, level: float) -> np.ndarray:
        return to_array(self.synthesis(y_hat, level).float())
