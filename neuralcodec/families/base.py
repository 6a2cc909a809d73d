"""The family contract: what every model family declares and what its coder does.

A *family* is an architecture with its own way of coding latents (the built-in ones are
listed in :mod:`neuralcodec.families`). Each registers itself, light (no torch), when
:mod:`neuralcodec.families` is imported: its name as model cards spell it, the chunk
tags it writes (registered with the container, which knows no family), its
downsampling, the container versions it reads and writes, and the module that loads a
model of it into a :class:`ModelCoder` (imported only when such a model is used).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..format.chunks import register_chunk

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Family:
    name: str  # the model card's "family"
    chunks: Mapping[bytes, str]  # tag -> what it holds
    pad_multiple: int  # the transforms' whole downsampling: images are padded to this
    latent_stride: int  # pixels per latent position, along each side
    formats: tuple[int, ...]  # container versions its coder writes and reads
    # Module with ``load(info: ModelInfo, device, backend=None) -> ModelCoder``; backend
    # None is the family's choice for the device.
    coder_module: str
    # Encoder effort level -> iterations of per-image latent refinement; level 1 is the
    # single amortized pass of the analysis transform, the only level of some families.
    efforts: Mapping[int, int] = field(default_factory=lambda: {1: 0})
    # Names the refinement method's revision: a benchmark's cached rows of an effort
    # level are only reused while it (and the level's iterations) stay the same.
    effort_method: str = ""
    # Whether it codes on a CPU without PyTorch (at effort 1, format versions 2 and 3);
    # else every use needs the torch extra.
    runs_on_numpy: bool = False
    # Whether, where it does not code on NumPy, it still decodes there (its encoder alone
    # needs torch: the overfitted family fits each image).
    decodes_on_numpy: bool = False
    # Whether its encoder fits networks to each image (minutes per image): `aec bench`
    # then leaves it out of "every installed model" unless named.
    fits_per_image: bool = False
    # Family facts of a file for ``aec info``, from its tiles' chunks (no decoding).
    facts: Callable[[Sequence[Mapping[bytes, bytes]]], dict] | None = None

    @property
    def max_effort(self) -> int:
        return max(self.efforts)


_FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Make a family known to the model zoo and its chunk tags known to the container."""
    if family.name in _FAMILIES and _FAMILIES[family.name] != family:
        raise ValueError(f"model family '{family.name}' is registered twice")
    for tag, what in family.chunks.items():
        register_chunk(tag, f"{family.name}: {what}")
    _FAMILIES[family.name] = family
    return family


def get_family(name: str) -> Family | None:
    return _FAMILIES.get(name)


def families() -> list[Family]:
    return list(_FAMILIES.values())


@dataclass(frozen=True)
class RatePoint:
    """Where on a model's rate range an image is coded: ``numerator / denominator`` of
    the way from its lowest rate (0) to its highest (1). The codec makes it once from the
    file's stored quality (stored / full scale); each family maps it onto its own rate
    control (levels of gains, VQ units), and never sees the quality itself.

    Two forms of one value, so that encoder and decoder agree exactly: the integers, from
    which exact paths interpolate (integer gains), and ``fraction``, the float the float
    transforms take. The float is made by the codec as files have always been made
    (quality / 100, quality = stored / 100); it equals numerator / denominator to float
    precision, but not always to the last bit, and a file's pixels depend on that bit.
    """

    numerator: int
    denominator: int
    fraction: float

    def __post_init__(self) -> None:
        if not (0 <= self.numerator <= self.denominator and self.denominator > 0
                and abs(self.fraction - self.numerator / self.denominator) < 1e-12):
            raise ValueError(f"not a rate point: {self!r}")

    def level(self, levels: int) -> float:
        """The continuous rate level 0..levels-1 (float transforms' gains)."""
        return self.fraction * (levels - 1)

    def level_parts(self, levels: int) -> tuple[int, int]:
        """The same level exactly, as (lower level, ``t``): ``lo + t / denominator``,
        with ``lo`` at most ``levels - 2`` (so ``lo + 1`` is a level)."""
        position = self.numerator * (levels - 1)
        lo = min(position // self.denominator, levels - 2)
        return lo, position - lo * self.denominator


@dataclass(frozen=True)
class Refinement:
    """What an encoder that spends effort on one image (or tile) measures its distortion
    against: the padded input ``x``, whose top-left ``size`` (height, width) pixels are
    real. Effort never changes the bitstream's syntax, only which values are written."""

    effort: int
    x: np.ndarray  # (H, W, 3) float32
    size: tuple[int, int]


class ModelCoder(Protocol):
    """What :class:`~neuralcodec.codec.Codec` needs from a loaded model of any family.

    Images reach it as padded float32 NumPy arrays (H, W, 3) in [0, 1], channels-last, H
    and W multiples of ``pad_multiple``; it answers with named container chunks and takes
    them back. Where it computes (NumPy, torch, which device) is its own business. A coder
    may add ``analyse_batch(list of equal-sized arrays) -> list of features``, which the
    codec then uses to analyse several images in one call.
    """

    name: str
    fingerprint: bytes
    card: dict
    family: Family
    pad_multiple: int
    formats: tuple[int, ...]  # container versions it writes and reads
    max_effort: int  # refinement levels it offers beyond 1 (its family's)

    def analyse(self, x: np.ndarray) -> Any:
        """Rate-independent analysis (family-specific type), cached by the codec across a
        rate search."""
        ...

    def compress(self, features: Any, point: RatePoint, version: int,
                 refinement: Refinement | None = None) -> dict[bytes, bytes]:
        """Container chunks of analysed ``features`` at rate ``point``; with
        ``refinement`` (effort > 1) the latents are first refined for this image."""
        ...

    def decompress_latents(
        self, chunks: Mapping[bytes, bytes], size: tuple[int, int], point: RatePoint,
        version: int
    ) -> Any:
        """Entropy-decode the latents of a padded (H, W) image (family-specific type)."""
        ...

    def synthesize(self, latents: Any, point: RatePoint) -> np.ndarray:
        """Pixels (H, W, 3), float32, nominally in [0, 1], from decoded latents."""
        ...
