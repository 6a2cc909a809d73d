"""The coder of the families on the hyperprior's transforms, written once over a
transforms backend (:mod:`..transforms`); a family supplies only what is its own
(:class:`FamilyParts`: config, chunk tags, exact parameter path and latent codec, the
refinement objective of encoder effort).

Encoding a padded image::

    x ──analyse──► features                 (cached by the codec across a rate search)
      ──latents(level)──► y ──hyper_analyse(level)──► z ──round(z − median)──► z symbols
    (y, z symbols) ── the family's latent codec (exact parameter path) ──► chunks

Decoding: chunks ── latent codec ──► ŷ ──synthesize(level)──► x̂. The level is the rate
point's (:class:`~..base.RatePoint`), given by the codec.

The latent codec is built once from the weights file (NumPy), whatever the backend, so
every backend writes and reads the same symbols. The transforms run on NumPy on the CPU
and in torch elsewhere; encoder effort above 1 (gradients) and format version 1 (its
float64 parameter path) ask for the torch backend, loaded on first need.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import AecError, needs_torch, torch_missing
from ...stages import stage
from ..base import Family, RatePoint, Refinement
from ..transforms import Transforms
from ..zoo import ModelInfo
from . import CHUNK_ESCAPE, CHUNK_HYPER, CHUNK_LATENT, FAMILY
from .architecture import ModelConfig
from .coding_tables import CodingTables
from .integer_net import IntegerParamPath
from .latent_codec import DecodedLatents, LatentCodec, LatentStreams
from .numpy_backend import NumpyTransforms
from .stored_arrays import INTEGER_GAINS, read_arrays

BACKENDS = ("numpy", "torch")


@dataclass(frozen=True)
class FamilyParts:
    """What a family on the hyperprior's transforms brings of its own."""

    family: Family
    chunk_tags: tuple[bytes, bytes, bytes]  # z, y, escapes
    read_config: Callable[[dict], ModelConfig]  # the model card's "config"
    # (state, weight shifts, integer gains of z, tables, config) -> the exact latent codec
    latent_codec: Callable[..., LatentCodec]
    # -> (read_model(info, arrays=None) -> (torch model, shifts, gains), refiner class);
    # imports torch, so called only when the torch backend is needed.
    torch_parts: Callable[[], tuple[Callable, type]]


class TransformCoder:
    """A loaded model of a family on the hyperprior's transforms, coding padded images
    into container chunks (a :class:`~..base.ModelCoder`)."""

    def __init__(self, info: ModelInfo, parts: FamilyParts, config: ModelConfig,
                 transforms: Transforms, latent_codec: LatentCodec):
        self.name = info.name
        self.fingerprint = info.fingerprint
        self.card = info.card
        self.info = info
        self.parts = parts
        self.family = family = parts.family
        self.chunk_tags = parts.chunk_tags
        self.pad_multiple = family.pad_multiple
        self.formats = family.formats
        self.max_effort = family.max_effort
        self.config = config
        self.transforms = transforms
        self.latent_codec = latent_codec  # format versions 2 and 3
        self._torch: Any = transforms if transforms.backend == "torch" else None
        self._float_codec: LatentCodec | None = None  # format version 1
        self._exact: Any = None  # the exact synthesis, built on first use
        batched = getattr(transforms, "analyse_batch", None)
        if batched is not None:  # the codec analyses equal-sized images together
            self.analyse_batch = batched

    def torch_transforms(self) -> Any:
        """The model's transforms in torch: the backend itself where it is torch, else
        loaded on the CPU on first use (for effort and version 1)."""
        if self._torch is None:
            try:
                from .torch_backend import TorchTransforms

                read_model, _ = self.parts.torch_parts()
            except ModuleNotFoundError as exc:
                if not torch_missing(exc):
                    raise
                raise needs_torch("encoder effort above 1, or a version-1 file,") from None
            self._torch = TorchTransforms(read_model(self.info)[0])
        return self._torch

    def codec_for(self, version: int) -> LatentCodec:
        """The latent codec of a format version: the exact one, or for version 1 the
        float64 parameter path in torch (built on first use; only families that read
        version 1, the hyperprior, get here)."""
        if version != 1:
            return self.latent_codec
        if self._float_codec is None:
            from .float_param_path import FloatParamPath

            model = self.torch_transforms().model
            self._float_codec = LatentCodec(FloatParamPath(model), model.coding_tables())
        return self._float_codec

    def analyse(self, x: np.ndarray) -> Any:
        return self.transforms.analyse(x)

    def compress(self, features: Any, point: RatePoint, version: int,
                 refinement: Refinement | None = None) -> dict[bytes, bytes]:
        iterations = self.family.efforts[refinement.effort] if refinement else 0
        transforms = (self.torch_transforms() if version == 1 or iterations
                      else self.transforms)
        latent_codec = self.codec_for(version)
        level = point.level(self.config.levels)
        y = transforms.latents(features, level)
        with stage("entropy parameters"):
            z_sym = latent_codec.z_symbols(transforms.hyper_analyse(y, level))
        if iterations:
            from .refine import refined_streams

            _, refiner = self.parts.torch_parts()
            assert refinement is not None
            streams = refined_streams(transforms, refiner, latent_codec, y, z_sym, point,
                                      refinement, iterations)
        else:
            streams, _ = latent_codec.compress(transforms.as_array(y), point, z_sym)
        return streams.to_chunks(self.chunk_tags)

    def decompress_latents(
        self, chunks: Mapping[bytes, bytes], size: tuple[int, int], point: RatePoint,
        version: int
    ) -> DecodedLatents:
        streams = LatentStreams.from_chunks(chunks, self.chunk_tags)
        h, w = size
        stride = self.family.latent_stride
        return self.codec_for(version).decompress(
            streams, (h // stride, w // stride), (self.config.N, self.config.M), point)

    def synthesize(self, latents: DecodedLatents, point: RatePoint) -> np.ndarray:
        return self.transforms.synthesize(latents.y_hat, point.level(self.config.levels))

    def synthesize_exact(self, latents: DecodedLatents, point: RatePoint) -> np.ndarray:
        """uint8 pixels (H, W, 3) of the exact synthesis (:mod:`.exact_synthesis`): the
        same bits on every machine. It runs on NumPy whatever the backend (its torch
        twin needs gigabytes per tile for now), so every backend gives these pixels."""
        if self._exact is None:
            from .exact_synthesis import ExactSynthesis

            self._exact = ExactSynthesis.of_model(self.info)
        return self._exact(latents.y_hat, point)


def load_coder(parts: FamilyParts, info: ModelInfo, device: str = "cpu",
               backend: str | None = None) -> TransformCoder:
    """A model's coder with its transforms on ``backend`` ("numpy": the CPU only;
    "torch"; None: NumPy on the CPU, torch elsewhere) on ``device``."""
    backend = backend or ("numpy" if str(device) == "cpu" else "torch")
    if backend not in BACKENDS:
        raise AecError(f"unknown transforms backend '{backend}' (one of {BACKENDS})")
    if backend == "numpy" and str(device) != "cpu":
        raise AecError(f"the numpy backend runs on the CPU, not on {device}")
    state, shifts, gains = read_arrays(info)
    if gains is None:
        raise AecError(f"model '{info.name}': weights file lacks {INTEGER_GAINS}")
    try:
        config = parts.read_config(info.card["config"])
        latent_codec = parts.latent_codec(state, shifts, gains,
                                          CodingTables.from_state(state), config)
        transforms: Transforms
        if backend == "numpy":
            transforms = NumpyTransforms(state, config.N, config.M)
    except (KeyError, TypeError, ValueError) as exc:
        raise AecError(f"model '{info.name}': weights do not match its config ({exc})") from None
    if backend == "torch":
        from .torch_backend import TorchTransforms

        read_model, _ = parts.torch_parts()
        model = read_model(info, (state, shifts, gains))[0]  # the file is read once
        transforms = TorchTransforms(model.to(device))
    return TransformCoder(info, parts, config, transforms, latent_codec)


def _latent_codec(state: Mapping[str, np.ndarray], shifts: Mapping[str, int],
                  int_gain_z_inv: np.ndarray, tables: CodingTables, config: ModelConfig
                  ) -> LatentCodec:
    path = IntegerParamPath.from_weights(state, shifts, int_gain_z_inv, tables, config.N,
                                         config.M)
    return LatentCodec(path, tables)


def _torch_parts() -> tuple[Callable, type]:
    from .refine import Refiner
    from .weights import read_model

    return read_model, Refiner


PARTS = FamilyParts(FAMILY, (CHUNK_HYPER, CHUNK_LATENT, CHUNK_ESCAPE), ModelConfig.from_dict,
                    _latent_codec, _torch_parts)


def load(info: ModelInfo, device: str = "cpu", backend: str | None = None
         ) -> TransformCoder:
    """The hyperprior family's coder of a model (see :func:`load_coder`)."""
    return load_coder(PARTS, info, device, backend)
