"""The hyperprior family's networks as data, layer by layer (no torch).

One description serves both builders: :mod:`.model` makes torch modules of it (training,
encoder effort, CUDA), :mod:`.inference` NumPy layers (the coding path without torch).
Layer ``i`` of a network is stored under ``<network>.<i>`` (``context``, a single layer,
under ``context``). Also here: the config that sizes the networks (the rate level of a
rate point is :meth:`~..base.RatePoint.level`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..specs import GDN, Conv, Layer, LeakyReLU, deconv


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model's architecture (stored as JSON beside weights)."""

    N: int = 128
    M: int = 192
    # As shipped: ~0.07 to ~2.2 bpp on Kodak (ratio ~2.3 between neighbours).
    lambdas: tuple[float, ...] = field(
        default_factory=lambda: (
            0.00033, 0.0009, 0.002, 0.0046, 0.0104, 0.0235, 0.053, 0.12, 0.27, 0.6
        )
    )

    def __post_init__(self) -> None:
        lam = self.lambdas
        if len(lam) < 2 or lam[0] <= 0 or any(lam[i + 1] <= lam[i] for i in range(len(lam) - 1)):
            raise ValueError(f"rate levels need two or more increasing positive lambdas: {lam}")

    @property
    def levels(self) -> int:
        return len(self.lambdas)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["lambdas"] = list(self.lambdas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        return cls(N=int(d["N"]), M=int(d["M"]), lambdas=tuple(float(v) for v in d["lambdas"]))


def analysis(N: int, M: int) -> tuple[Layer, ...]:
    """``g_a``: image to latents, downsampling 16x."""
    return (Conv(3, N), GDN(N), Conv(N, N), GDN(N), Conv(N, N), GDN(N), Conv(N, M))


def synthesis(N: int, M: int) -> tuple[Layer, ...]:
    """``g_s``: latents to image."""
    return (deconv(M, N), GDN(N, True), deconv(N, N), GDN(N, True), deconv(N, N),
            GDN(N, True), deconv(N, 3))


def hyper_analysis(N: int, M: int) -> tuple[Layer, ...]:
    """``h_a``: latents to the hyper-latent, downsampling another 4x."""
    return (Conv(M, N, 3, 1), LeakyReLU(), Conv(N, N), LeakyReLU(), Conv(N, N))


def hyper_synthesis(N: int, M: int) -> tuple[Layer, ...]:
    """``h_s``: hyper-latent to the hyper features the parameters are predicted from."""
    return (deconv(N, N), LeakyReLU(), deconv(N, N), LeakyReLU(), Conv(N, M, 3, 1))


def context(M: int) -> Conv:
    """The checkerboard context: a 5x5 convolution over the decoded anchors."""
    return Conv(M, M, 5, 1)


def entropy_parameters(M: int) -> tuple[Layer, ...]:
    """Per position (1x1): hyper features and context to each latent's scale and mean."""
    return (Conv(2 * M, 320, 1, 1), LeakyReLU(), Conv(320, 256, 1, 1), LeakyReLU(),
            Conv(256, 2 * M, 1, 1))
