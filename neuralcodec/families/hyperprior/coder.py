"""The hyperprior family's coder: how a loaded model codes a padded image.

Encoding: ``g_a`` (cached across a rate search), the rate level's gains, at effort > 1
the latents refined for the image (:mod:`.refine`), then the
:class:`~neuralcodec.families.hyperprior.latent_codec.LatentCodec` writes the
HYPR/LATN/ESCP chunks. Decoding reverses it; the synthesis ``g_s`` runs on the codec's
device.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from ...format.quality import from_stored
from ...stages import stage
from ..base import Refinement
from ..zoo import ModelInfo
from . import CHUNK_ESCAPE, CHUNK_HYPER, CHUNK_LATENT, FAMILY
from .integer_net import IntegerParamPath
from .latent_codec import DecodedLatents, FloatParamPath, LatentCodec, LatentStreams
from .model import HyperpriorCheckerboard, rate_level
from .refine import Refiner, iterations_for, rd_cost
from .weights import read_model


class HyperpriorCoder:
    """A loaded hyperprior model, coding padded images into container chunks."""

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
        int_gain_z_inv: Tensor,
    ):
        self.name = info.name
        self.fingerprint = info.fingerprint
        self.card = info.card
        self.model = model
        self.weight_shifts = weight_shifts
        self.int_gain_z_inv = int_gain_z_inv
        self._latent_codecs: dict[int, LatentCodec] = {}

    def latent_codec(self, version: int) -> LatentCodec:
        """The latent codec of a format version (built on first use)."""
        codec = self._latent_codecs.get(version)
        if codec is None:
            if version == 1:
                path = FloatParamPath(self.model)
            else:
                path = IntegerParamPath(self.model, self.int_gain_z_inv, self.weight_shifts)
            codec = self._latent_codecs[version] = LatentCodec(self.model, path)
        return codec

    def _level(self, quality: int, device: torch.device) -> Tensor:
        level = rate_level(from_stored(quality), self.model.config.levels)
        return torch.tensor([level], device=device)

    @torch.inference_mode()
    def analyse(self, x: Tensor) -> Tensor:
        return self.model.g_a(x.contiguous(memory_format=torch.channels_last))

    @torch.no_grad()
    def compress(self, features: Tensor, quality: int, version: int,
                 refinement: Refinement | None = None) -> dict[bytes, bytes]:
        level = self._level(quality, features.device)
        y = features * self.model.gain_y(level)
        latent_codec = self.latent_codec(version)
        iterations = iterations_for(refinement.effort) if refinement else 0
        if refinement is None or iterations == 0:
            streams, _ = latent_codec.compress(y, quality)
        else:
            streams = self._refined(latent_codec, y, quality, level, refinement, iterations)
        return streams.to_chunks(self.chunk_tags)

    def _refined(self, latent_codec: LatentCodec, y: Tensor, quality: int, level: Tensor,
                 refinement: Refinement, iterations: int) -> LatentStreams:
        """The streams of ``y`` refined for the image, or of ``y`` itself when that file
        costs less (λ·D + R, measured on the real bytes and decoded pixels)."""
        z_sym = latent_codec.z_symbols(y, quality)
        model = self.model
        med = latent_codec.z_medians.to(y.device, y.dtype)
        hyper = model.hyper_synthesis(z_sym.to(y.device, y.dtype) + med, level)
        refiner = self.refiner(model, refinement.x, refinement.size, hyper, level)
        with stage("refinement"):
            refined = refiner.refine(y, iterations)
        best, best_cost = None, float("inf")
        height, width = refinement.size
        for candidate in (y, refined):
            streams, decoded = latent_codec.compress(candidate, quality, z_sym)
            bits = 8 * (len(streams.z) + len(streams.y) + len(streams.escapes))
            x_hat = self.synthesize(decoded, quality)[:, :, :height, :width]
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
        return self.latent_codec(version).decompress(streams, (h // 16, w // 16), quality)

    @torch.inference_mode()
    def synthesize(self, latents: DecodedLatents, quality: int) -> Tensor:
        device = next(self.model.parameters()).device
        y_hat = latents.y_hat.to(device).contiguous(memory_format=torch.channels_last)
        return self.model.synthesis(y_hat, self._level(quality, device))


def load(info: ModelInfo, device: str | torch.device = "cpu") -> HyperpriorCoder:
    model, shifts, gains = read_model(info)
    # A coding model is never trained: refinement (effort) then differentiates with
    # respect to the latents only, not every weight.
    model.eval().requires_grad_(False).to(device)
    # The transforms run channels-last: about 1.7x faster on CPU (oneDNN's layout).
    for transform in (model.g_a, model.g_s):
        transform.to(memory_format=torch.channels_last)
    return HyperpriorCoder(info, model, shifts, gains)
