"""The hyperprior family's torch coder: how a loaded torch model codes a padded image.

Encoding: ``g_a`` (cached across a rate search), the rate level's gains, at effort > 1
the latents refined for the image (:mod:`.refine`), then the
:class:`~neuralcodec.families.hyperprior.latent_codec.LatentCodec` writes the
HYPR/LATN/ESCP chunks. Decoding reverses it; the transforms run on the codec's device
(CUDA, or the CPU where :mod:`.inference` hands over to it: encoder effort, version-1
files). Images and latents cross its interface as NumPy arrays, channels-last.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

from ...format.quality import from_stored
from ...stages import stage
from ..base import Refinement
from ..torch_arrays import to_array, to_tensor
from ..zoo import ModelInfo
from . import CHUNK_ESCAPE, CHUNK_HYPER, CHUNK_LATENT, FAMILY
from .architecture import rate_level
from .float_param_path import FloatParamPath
from .integer_net import IntegerParamPath
from .latent_codec import DecodedLatents, LatentCodec, LatentStreams
from .model import HyperpriorCheckerboard
from .refine import Refiner, iterations_for, rd_cost
from .weights import read_model


def numpy_state(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """The model's tensors as float64 (or integer) arrays by state-dict name."""
    return {k: v.detach().cpu().double().numpy() if v.is_floating_point() else
            v.detach().cpu().numpy() for k, v in model.state_dict().items()}


class HyperpriorCoder:
    """A loaded hyperprior model in torch, coding padded images into container chunks."""

    pad_multiple = FAMILY.pad_multiple
    chunk_tags = (CHUNK_HYPER, CHUNK_LATENT, CHUNK_ESCAPE)  # z, y, escapes
    formats = FAMILY.formats
    max_effort = FAMILY.max_effort
    refiner = Refiner  # the per-image objective of effort > 1

    def __init__(
        self,
        info: ModelInfo,
        model: HyperpriorCheckerboard,
        weight_shifts: dict[str, int],
        int_gain_z_inv: np.ndarray,
    ):
        self.name = info.name
        self.fingerprint = info.fingerprint
        self.card = info.card
        self.model = model
        self.weight_shifts = weight_shifts
        self.int_gain_z_inv = np.asarray(int_gain_z_inv)
        self._latent_codecs: dict[int, LatentCodec] = {}

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def latent_codec(self, version: int) -> LatentCodec:
        """The latent codec of a format version (built on first use)."""
        codec = self._latent_codecs.get(version)
        if codec is None:
            tables = self.model.coding_tables()
            if version == 1:
                path = FloatParamPath(self.model)
            else:
                config = self.model.config
                path = IntegerParamPath.from_weights(
                    numpy_state(self.model), self.weight_shifts, self.int_gain_z_inv, tables,
                    config.N, config.M)
            codec = self._latent_codecs[version] = LatentCodec(path, tables)
        return codec

    def _level(self, quality: int, device: torch.device) -> Tensor:
        level = rate_level(from_stored(quality), self.model.config.levels)
        return torch.tensor([level], device=device)

    @torch.inference_mode()
    def analyse(self, x: np.ndarray) -> Tensor:
        return self.model.g_a(to_tensor(x, self.device))

    @torch.inference_mode()
    def analyse_batch(self, xs: list[np.ndarray]) -> list[Tensor]:
        """``analyse`` of equal-sized images in one call."""
        y = self.model.g_a(torch.cat([to_tensor(x, self.device) for x in xs]))
        return [y[i:i + 1] for i in range(len(xs))]

    def _z_symbols(self, latent_codec: LatentCodec, y: Tensor, level: Tensor) -> np.ndarray:
        with stage("entropy parameters"):
            z = self.model.hyper_analysis(y, level)
        return latent_codec.z_symbols(to_array(z.double()))

    @torch.no_grad()
    def compress(self, features: Tensor, quality: int, version: int,
                 refinement: Refinement | None = None) -> dict[bytes, bytes]:
        level = self._level(quality, features.device)
        y = features * self.model.gain_y(level)
        latent_codec = self.latent_codec(version)
        z_sym = self._z_symbols(latent_codec, y, level)
        iterations = iterations_for(refinement.effort) if refinement else 0
        if refinement is None or iterations == 0:
            streams, _ = latent_codec.compress(to_array(y.double()), quality, z_sym)
        else:
            streams = self._refined(latent_codec, y, z_sym, quality, level, refinement,
                                    iterations)
        return streams.to_chunks(self.chunk_tags)

    def _refined(self, latent_codec: LatentCodec, y: Tensor, z_sym: np.ndarray, quality: int,
                 level: Tensor, refinement: Refinement, iterations: int) -> LatentStreams:
        """The streams of ``y`` refined for the image, or of ``y`` itself when that file
        costs less (λ·D + R, measured on the real bytes and decoded pixels)."""
        model = self.model
        z_hat = to_tensor(z_sym + latent_codec.z_medians, y.device).to(y.dtype)
        hyper = model.hyper_synthesis(z_hat, level)
        refiner = self.refiner(model, to_tensor(refinement.x, y.device), refinement.size,
                               hyper, level)
        with stage("refinement"):
            refined = refiner.refine(y, iterations)
        best, best_cost = None, float("inf")
        height, width = refinement.size
        for candidate in (y, refined):
            streams, decoded = latent_codec.compress(to_array(candidate.double()), quality,
                                                     z_sym)
            bits = 8 * (len(streams.z) + len(streams.y) + len(streams.escapes))
            x_hat = self._synthesis(decoded, quality)[:, :, :height, :width]
            x_hat = torch.round(x_hat.clamp(0, 1) * 255) / 255  # the decoded pixels
            cost = float(rd_cost(refiner.lam, refiner.x, x_hat, bits, height * width))
            if cost < best_cost:
                best, best_cost = streams, cost
        assert best is not None
        return best

    def decompress_latents(
        self, chunks: Mapping[bytes, bytes], size: tuple[int, int], quality: int, version: int
    ) -> DecodedLatents:
        streams = LatentStreams.from_chunks(chunks, self.chunk_tags)
        h, w = size
        config = self.model.config
        return self.latent_codec(version).decompress(streams, (h // 16, w // 16),
                                                     (config.N, config.M), quality)

    @torch.inference_mode()
    def _synthesis(self, latents: DecodedLatents, quality: int) -> Tensor:
        y_hat = to_tensor(latents.y_hat, self.device)
        return self.model.synthesis(y_hat, self._level(quality, self.device))

    def synthesize(self, latents: DecodedLatents, quality: int) -> np.ndarray:
        return to_array(self._synthesis(latents, quality).float())


def load(info: ModelInfo, device: str | torch.device = "cpu") -> HyperpriorCoder:
    model, shifts, gains = read_model(info)
    # A coding model is never trained: refinement (effort) then differentiates with
    # respect to the latents only, not every weight.
    model.eval().requires_grad_(False).to(device)
    # The transforms run channels-last: about 1.7x faster on CPU (oneDNN's layout).
    for transform in (model.g_a, model.g_s):
        transform.to(memory_format=torch.channels_last)
    return HyperpriorCoder(info, model, shifts, gains.numpy())
