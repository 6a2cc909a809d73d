"""The hyperprior family's coder without torch: its transforms as NumPy layers
(:mod:`..numpy_layers`, built from :mod:`.architecture`), the same exact parameter path
and latent codec as the torch coder's, so that both decode a file to the same latents.

This is the family's loader: on the CPU it returns :class:`NumpyCoder`, elsewhere the
torch coder (:mod:`.coder`). The NumPy coder hands over to a torch coder, loaded on
first need, for what needs torch: encoder effort above 1 (gradients) and format
version 1 (its float64 parameter path).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from ...errors import AecError, needs_torch, torch_missing
from ...format.quality import from_stored
from ...stages import stage
from ..base import Refinement
from ..numpy_layers import GDN, Conv2d, ConvTranspose2d
from ..specs import Conv, Layer, LeakyReLU
from ..zoo import ModelInfo
from . import CHUNK_ESCAPE, CHUNK_HYPER, CHUNK_LATENT, FAMILY, architecture
from .architecture import ModelConfig, rate_level
from .coding_tables import CodingTables
from .integer_net import IntegerParamPath
from .latent_codec import DecodedLatents, LatentCodec, LatentStreams
from .weights_file import INTEGER_GAINS, read_arrays

LEAKY_SLOPE = np.float32(0.01)


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def _gdn_parameter(state: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    """GDN's effective ``beta`` or ``gamma`` from its stored reparametrization:
    ``max(p, bound)**2 - pedestal``, in float32 as torch computes it."""
    p = _f32(state[name])
    bound = _f32(state[f"{name}_reparam.lower_bound.bound"])
    pedestal = _f32(state[f"{name}_reparam.pedestal"])
    return np.maximum(p, bound) ** 2 - pedestal


class NumpyNetwork:
    """A described network (see :mod:`..specs`) on (h, w, C) float32 arrays."""

    def __init__(self, network: tuple[Layer, ...], state: Mapping[str, np.ndarray],
                 prefix: str):
        self.layers: list[Any] = []
        for i, spec in enumerate(network):
            name = f"{prefix}.{i}"
            if isinstance(spec, Conv):
                weight, bias = _f32(state[f"{name}.weight"]), _f32(state[f"{name}.bias"])
                self.layers.append(
                    ConvTranspose2d(weight, bias, spec.stride, spec.padding,
                                    spec.output_padding) if spec.transposed
                    else Conv2d(weight, bias, spec.stride, spec.padding))
            elif isinstance(spec, LeakyReLU):
                self.layers.append(_leaky_relu)
            else:
                gdn = GDN(_gdn_parameter(state, f"{name}.beta"),
                          _gdn_parameter(state, f"{name}.gamma"), spec.inverse)
                self.layers.append(lambda x, gdn=gdn: gdn(x, out=x))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        # Convolutions make new arrays; the activations then work in place on them (a
        # network never starts with one, so the caller's array is never written).
        for layer in self.layers:
            x = layer(x)
        return x


def _leaky_relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, x * LEAKY_SLOPE, out=x)


class GainBank:
    """Per-level channel gains, interpolated geometrically (as the model's, in float32)."""

    def __init__(self, log_gain: np.ndarray):
        self.log_gain = _f32(log_gain)

    def __call__(self, level: float) -> np.ndarray:
        levels = self.log_gain.shape[0]
        level32 = np.float32(min(max(level, 0.0), levels - 1))
        lo = min(int(np.floor(level32)), levels - 2)
        frac = level32 - np.float32(lo)
        log_gain = (np.float32(1) - frac) * self.log_gain[lo] + frac * self.log_gain[lo + 1]
        return np.exp(log_gain)


class NumpyCoder:
    """A loaded hyperprior model on NumPy, coding padded images into container chunks.

    A family on the same transforms (the channel-context one) subclasses it with its own
    config, latent codec, chunks and torch coder."""

    family = FAMILY
    chunk_tags = (CHUNK_HYPER, CHUNK_LATENT, CHUNK_ESCAPE)  # z, y, escapes
    torch_module = "neuralcodec.families.hyperprior.coder"  # its load(): the torch coder

    def __init__(self, info: ModelInfo, state: dict[str, np.ndarray], shifts: dict[str, int],
                 int_gain_z_inv: np.ndarray):
        self.name = info.name
        self.fingerprint = info.fingerprint
        self.card = info.card
        self.info = info
        self.config = config = self.read_config(info.card["config"])
        n, m = config.N, config.M
        self.g_a = NumpyNetwork(architecture.analysis(n, m), state, "g_a")
        self.g_s = NumpyNetwork(architecture.synthesis(n, m), state, "g_s")
        self.h_a = NumpyNetwork(architecture.hyper_analysis(n, m), state, "h_a")
        self.gain_y, self.gain_y_inv, self.gain_z = (
            GainBank(state[f"{name}.log_gain"]) for name in ("gain_y", "gain_y_inv", "gain_z"))
        self.latent_codec = self.make_latent_codec(state, shifts, int_gain_z_inv,
                                                   CodingTables.from_state(state))
        self._torch_coder: Any = None

    @property
    def pad_multiple(self) -> int:
        return self.family.pad_multiple

    @property
    def formats(self) -> tuple[int, ...]:
        return self.family.formats

    @property
    def max_effort(self) -> int:
        return self.family.max_effort

    @staticmethod
    def read_config(card_config: dict) -> ModelConfig:
        return ModelConfig.from_dict(card_config)

    def make_latent_codec(self, state: dict[str, np.ndarray], shifts: dict[str, int],
                          int_gain_z_inv: np.ndarray, tables: CodingTables) -> LatentCodec:
        path = IntegerParamPath.from_weights(state, shifts, int_gain_z_inv, tables,
                                             self.config.N, self.config.M)
        return LatentCodec(path, tables)

    def torch_coder(self) -> Any:
        """The same model in torch on the CPU (loaded on first use)."""
        if self._torch_coder is None:
            try:
                module = importlib.import_module(self.torch_module)
            except ModuleNotFoundError as exc:
                if not torch_missing(exc):
                    raise
                raise needs_torch("encoder effort above 1, or a version-1 file,") from None
            self._torch_coder = module.load(self.info, "cpu")
        return self._torch_coder

    def _level(self, quality: int) -> float:
        return rate_level(from_stored(quality), self.config.levels)

    def analyse(self, x: np.ndarray) -> np.ndarray:
        return self.g_a(_f32(x))

    def compress(self, features: np.ndarray, quality: int, version: int,
                 refinement: Refinement | None = None) -> dict[bytes, bytes]:
        if version == 1 or (refinement is not None and
                            self.family.efforts[refinement.effort]):
            coder = self.torch_coder()
            from ..torch_arrays import to_tensor

            return coder.compress(to_tensor(features, "cpu"), quality, version, refinement)
        level = self._level(quality)
        y = features * self.gain_y(level)
        with stage("entropy parameters"):
            z = self.h_a(y) * self.gain_z(level)
        streams, _ = self.latent_codec.compress(y, quality, self.latent_codec.z_symbols(z))
        return streams.to_chunks(self.chunk_tags)

    def decompress_latents(
        self, chunks: Mapping[bytes, bytes], size: tuple[int, int], quality: int, version: int
    ) -> DecodedLatents:
        if version == 1:
            return self.torch_coder().decompress_latents(chunks, size, quality, version)
        streams = LatentStreams.from_chunks(chunks, self.chunk_tags)
        h, w = size
        return self.latent_codec.decompress(streams, (h // 16, w // 16),
                                            (self.config.N, self.config.M), quality)

    def synthesize(self, latents: DecodedLatents, quality: int) -> np.ndarray:
        return self.g_s(latents.y_hat * self.gain_y_inv(self._level(quality)))


def load_with(coder: type[NumpyCoder], info: ModelInfo, device: str) -> Any:
    """A model's coder: ``coder`` (a NumPy coder class) for the CPU, else the family's torch
    coder on ``device``."""
    if str(device) != "cpu":
        return importlib.import_module(coder.torch_module).load(info, device)
    state, shifts, gains = read_arrays(info)
    if gains is None:
        raise AecError(f"model '{info.name}': weights file lacks {INTEGER_GAINS}")
    try:
        return coder(info, state, shifts, gains)
    except (KeyError, TypeError, ValueError) as exc:
        raise AecError(f"model '{info.name}': weights do not match its config ({exc})") from None


def load(info: ModelInfo, device: str = "cpu") -> Any:
    """The family's coder of a model: on NumPy for the CPU, else in torch on ``device``."""
    return load_with(NumpyCoder, info, device)
