"""The transforms backend: what a family's coder needs from its networks, on any backend.

A family on the hyperprior's transforms (:mod:`.hyperprior`, :mod:`.channel_context`)
has one coder (:class:`~.hyperprior.coder.TransformCoder`), written once over this
protocol; the networks behind it run on a backend:

    hyperprior/numpy_backend.py  NumPy layers, no torch: the CPU's (the default there)
    hyperprior/torch_backend.py  the torch model: CUDA, and encoder effort (gradients)

Another backend (ONNX Runtime, a browser's) is one more such file: it implements these
five methods and needs no coder of its own. Arrays crossing the protocol are NumPy,
channels-last (H, W, C); ``features`` and ``y`` are the backend's own type (NumPy arrays,
tensors on a device) and only travel between its own methods::

    x ──analyse──► features ──latents(level)──► y ──hyper_analyse(level)──► z  (array)
                                                └──as_array──► y (array) ──► latent codec
    ŷ (array, from the latent codec) ──synthesize(level)──► x̂ (array)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np


class Transforms(Protocol):
    """A model's analysis, hyper-analysis and synthesis transforms with their rate-level
    gains (Cui et al. 2021), on one backend. ``level`` is the continuous rate level
    0..levels-1 (:meth:`~.base.RatePoint.level`)."""

    backend: str  # its name: "numpy", "torch"
    device: str  # where it computes, as torch names devices ("cpu", "cuda:0")

    def analyse(self, x: np.ndarray) -> Any:
        """``g_a`` of a padded image (H, W, 3) float32: rate-independent features."""
        ...

    def latents(self, features: Any, level: float) -> Any:
        """The latents ``y`` at a rate level: the features times the level's gains."""
        ...

    def hyper_analyse(self, y: Any, level: float) -> np.ndarray:
        """The hyper-latent ``z`` (h/4, w/4, N) of ``y``, before rounding."""
        ...

    def as_array(self, y: Any) -> np.ndarray:
        """``y`` as the latent codec takes it: a float64 array (h, w, M)."""
        ...

    def synthesize(self, y_hat: np.ndarray, level: float) -> np.ndarray:
        """``g_s`` of decoded latents (h, w, M): pixels (H, W, 3) float32."""
        ...
