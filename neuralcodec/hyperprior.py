"""The hyperprior family: its weights on disk and how it codes a padded image.

Encoding: ``g_a`` (cached across a --bpp search), the rate level's gains, then the
:class:`~neuralcodec.latent_codec.LatentCodec` writes the HYPR/LATN/ESCP chunks.
Decoding reverses it; the synthesis ``g_s`` runs on the codec's device.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from .container import CHUNK_ESCAPE, CHUNK_HYPER, CHUNK_LATENT, QUALITY_SCALE, require_chunks
from .errors import AecError
from .integer_net import IntegerParamPath, integer_gains, param_path_convs, weight_shift
from .latent_codec import DecodedLatents, FloatParamPath, LatentCodec, LatentStreams
from .model import PAD_MULTIPLE, HyperpriorCheckerboard, ModelConfig, rate_level
from .registry import ModelInfo, load_state, storage_state, stored_dtype, write_model_files

FAMILY = "hyperprior-checkerboard"

# The transforms' kernels are stored in float16 to keep each file under 16 MiB; the
# parameter path's kernels as the integers its exact integer network uses (int16 plus a
# power-of-two shift per layer, `<layer>.weight_shift`); entropy models, GDN, biases and
# gains stay float32. Export rounds the weights first and builds the coding tables from
# the rounded model, so tables and weights agree.
_HALF_PREFIXES = ("g_a.", "g_s.", "h_a.")
SHIFT_SUFFIX = ".weight_shift"
INTEGER_GAINS = "integer.gain_z_inv"  # int64 (levels, N): exp() done once, here


def round_to_storage(model: HyperpriorCheckerboard) -> dict[str, int]:
    """Round parameters to what is stored (float16, or the integer grid of the parameter
    path), in place; returns the parameter path's weight shifts."""
    shifts = {}
    with torch.no_grad():
        for name, m in param_path_convs(model).items():
            shifts[name] = s = weight_shift(m.weight)
            m.weight.copy_(torch.round(m.weight.double() * 2.0**s) * 2.0**-s)
        for name, p in model.named_parameters():
            if stored_dtype(name, p, _HALF_PREFIXES) == torch.float16:
                p.copy_(p.to(torch.float16).to(p.dtype))
    return shifts


def save_model(model: HyperpriorCheckerboard, directory: Path, name: str, card: dict) -> Path:
    """Write ``name.safetensors`` and ``name.json`` (config + model card) to ``directory``.

    The model's coding tables are rebuilt from the storage-rounded weights first.
    """
    model = model.cpu().float().eval()
    shifts = round_to_storage(model)
    model.update(force=True)
    tensors = storage_state(model, _HALF_PREFIXES)
    for layer, s in shifts.items():
        w = tensors[f"{layer}.weight"].double() * 2.0**s
        tensors[f"{layer}.weight"] = w.round().to(torch.int16)
        tensors[layer + SHIFT_SUFFIX] = torch.tensor([s], dtype=torch.int32)
    tensors[INTEGER_GAINS] = integer_gains(model.gain_z_inv.log_gain)
    meta = {"family": FAMILY, "config": model.config.to_dict(), **card}
    return write_model_files(tensors, Path(directory), name, meta)


class HyperpriorCoder:
    """A loaded hyperprior model, coding padded images into container chunks."""

    pad_multiple = PAD_MULTIPLE
    formats = (1, 2, 3)  # 1: float64 parameter path; 2, 3: exact integer path (3: tiled)

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
        level = rate_level(quality / QUALITY_SCALE, self.model.config.levels)
        return torch.tensor([level], device=device)

    @torch.no_grad()
    def analyse(self, x: Tensor) -> Tensor:
        return self.model.g_a(x)

    @torch.no_grad()
    def compress(self, features: Tensor, quality: int, version: int) -> dict[bytes, bytes]:
        y = features * self.model.gain_y(self._level(quality, features.device))
        streams, _ = self.latent_codec(version).compress(y, quality)
        chunks = {CHUNK_HYPER: streams.z, CHUNK_LATENT: streams.y}
        if streams.escapes:
            chunks[CHUNK_ESCAPE] = streams.escapes
        return chunks

    def decompress_latents(
        self, chunks: Mapping[bytes, bytes], size: tuple[int, int], quality: int, version: int
    ) -> DecodedLatents:
        require_chunks(chunks, (CHUNK_HYPER, CHUNK_LATENT))
        streams = LatentStreams(
            chunks[CHUNK_HYPER], chunks[CHUNK_LATENT], chunks.get(CHUNK_ESCAPE, b"")
        )
        h, w = size
        return self.latent_codec(version).decompress(streams, (h // 16, w // 16), quality)

    @torch.no_grad()
    def synthesize(self, latents: DecodedLatents, quality: int) -> Tensor:
        device = next(self.model.parameters()).device
        return self.model.synthesis(latents.y_hat.to(device), self._level(quality, device))


def load(info: ModelInfo, device: str | torch.device = "cpu") -> HyperpriorCoder:
    from safetensors.torch import load_file

    config = ModelConfig.from_dict(info.card["config"])
    model = HyperpriorCheckerboard(config)
    stored = load_file(str(info.weights))
    shifts = {k[: -len(SHIFT_SUFFIX)]: int(v[0]) for k, v in stored.items()
              if k.endswith(SHIFT_SUFFIX)}
    gains = stored.get(INTEGER_GAINS)
    state = {}
    for k, v in stored.items():
        if k.endswith(SHIFT_SUFFIX) or k == INTEGER_GAINS:
            continue
        layer = k[: -len(".weight")]
        if k.endswith(".weight") and layer in shifts:
            v = v.double() * 2.0 ** -shifts[layer]  # exact: |w_int| <= 2**14
        state[k] = v
    load_state(model, state, info)
    if gains is None:
        raise AecError(f"model '{info.name}': weights file lacks {INTEGER_GAINS}")
    model.eval().to(device)
    return HyperpriorCoder(info, model, shifts, gains)
