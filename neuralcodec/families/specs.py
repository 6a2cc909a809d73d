"""Networks as data: the layer types a family's networks are described with (no torch).

A family describes each network once as a tuple of these; :func:`~.layers.build` makes
torch modules of it (training, encoder effort, CUDA) and :mod:`.numpy_layers` NumPy
layers (the coding path without torch), so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Conv:
    """A convolution with padding ``k // 2``; transposed ones add ``stride - 1`` output
    padding, so that both scale sizes by exactly ``stride``."""

    cin: int
    cout: int
    k: int = 5
    stride: int = 2
    transposed: bool = False

    @property
    def padding(self) -> int:
        return self.k // 2

    @property
    def output_padding(self) -> int:
        return self.stride - 1 if self.transposed else 0


@dataclass(frozen=True)
class GDN:
    """Generalized divisive normalization (``inverse``: its inverse, IGDN)."""

    channels: int
    inverse: bool = False


@dataclass(frozen=True)
class LeakyReLU:
    """LeakyReLU with slope 0.01 (the parameter path's only nonlinearity)."""


Layer = Conv | GDN | LeakyReLU


def deconv(cin: int, cout: int, k: int = 5, stride: int = 2) -> Conv:
    return Conv(cin, cout, k, stride, transposed=True)
