"""The VQ-VAE family's coder: its weights on disk and how it codes a padded image.

Encoding: ``g_a`` (cached across a --bpp search), entropy-constrained residual product
VQ, then the first ``n`` units' indices (``n`` from the rate point, see
:func:`~neuralcodec.families.vq.model.units_at`) are range-coded into one VQIX chunk.
Each index is coded with the integer table of its unit and context; the context is a
fixed integer function of an already decoded index, and the tables are 16-bit CDFs
stored in the weights file, so both ends use identical probabilities by construction.
Decoding sums the decoded units' codewords and runs the synthesis ``g_s``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ...entropy import CDF_PRECISION, SymbolDecoder, SymbolEncoder, TableSet
from ...errors import AecError, CorruptFileError
from ...format.chunks import require_chunks
from ..base import RatePoint, Refinement
from ..model_files import load_state, storage_state, write_model_files
from ..torch_arrays import to_array, to_tensor
from ..zoo import ModelInfo
from . import CHUNK_VQ_INDICES, FAMILY
from .model import VQAutoencoder, VQConfig, from_groups, units_at

TABLES = "tables.cdf"  # int32 (units * contexts, K + 2): the coding tables
# Transform kernels in float16 (file size); codebooks, scales, tables exact as trained.
_HALF_PREFIXES = ("g_a.", "g_s.")


def save_model(model: VQAutoencoder, directory: Path, name: str, card: dict) -> Path:
    """Write ``name.safetensors`` and ``name.json`` (config + model card) to ``directory``;
    the coding tables are made from the prior's logits here, once."""
    model = model.cpu().float().eval()
    tensors = storage_state(model, _HALF_PREFIXES)
    tensors[TABLES] = torch.from_numpy(model.coding_tables())
    meta = {"family": FAMILY.name, "config": model.config.to_dict(), **card}
    return write_model_files(tensors, Path(directory), name, meta)


@dataclass
class VQLatents:
    indices: np.ndarray  # int64 (units coded, h * w), in coding order
    units: tuple[int, ...]  # the unit ids coded, in coding order
    z_hat: Tensor  # float32 (1, M, h, w), ready for the synthesis transform


class VQCoder:
    """A loaded VQ-VAE model, coding padded images into the VQIX chunk."""

    family = FAMILY
    pad_multiple = FAMILY.pad_multiple
    formats = FAMILY.formats
    max_effort = FAMILY.max_effort

    def __init__(self, info: ModelInfo, model: VQAutoencoder, cdfs: np.ndarray):
        self.name = info.name
        self.fingerprint = info.fingerprint
        self.card = info.card
        self.model = model
        self.config = c = model.config
        k = c.codebook_size
        if cdfs.shape != (c.units * c.contexts, k + 2):
            raise AecError(f"model '{info.name}': coding tables have shape {cdfs.shape}")
        cdfs = cdfs.astype(np.int64)
        if np.any(np.diff(cdfs, axis=1) <= 0) or np.any(cdfs[:, -1] != 1 << CDF_PRECISION):
            raise AecError(f"model '{info.name}': coding tables are not valid CDFs")
        self.tables = TableSet(cdfs, np.full(len(cdfs), k + 2), np.zeros(len(cdfs)))
        freqs = np.diff(cdfs, axis=1)[:, :k].astype(np.float64)
        # The encoder's rate estimate is the real cost under the stored tables.
        self.bits = torch.from_numpy(CDF_PRECISION - np.log2(freqs)).view(c.units, c.contexts, k)
        # Index search and codeword sums run in float64 on the CPU, apart from the
        # transforms (only the encoder searches; the decoder only looks codewords up).
        self.index_model = copy.deepcopy(model).cpu().double()
        self.index_model.g_a = self.index_model.g_s = nn.Identity()
        self.context_bins = model.prior.context_bins.cpu().numpy()

    def units(self, point: RatePoint) -> tuple[int, ...]:
        """Unit ids coded at a rate point, in coding order."""
        return self.config.order[: units_at(point.fraction, self.config)]

    def _contexts(self, unit: int, indices: dict[int, np.ndarray], count: int) -> np.ndarray:
        parent = self.config.parent(unit)
        if parent is None:
            return np.zeros(count, dtype=np.int64)
        return self.context_bins[parent][indices[parent]]

    @torch.no_grad()
    def analyse(self, x: np.ndarray) -> Tensor:
        return self.model.analysis(to_tensor(x, next(self.model.parameters()).device))

    @torch.no_grad()
    def compress(self, features: Tensor, point: RatePoint, version: int,
                 refinement: Refinement | None = None) -> dict[bytes, bytes]:
        # max_effort is 1: the codec never passes a refinement.
        q = self.index_model.quantize(features.to("cpu", torch.float64), bits_table=self.bits)
        g_count = self.config.groups
        coded = {u: q.indices[divmod(u, g_count)].numpy() for u in self.units(point)}
        encoder = SymbolEncoder()
        for u, symbols in coded.items():
            table = u * self.config.contexts + self._contexts(u, coded, symbols.size)
            encoder.encode(symbols, table, self.tables)
        stream, escapes = encoder.finish()
        if escapes:  # indices are < K by construction
            raise AecError("internal error: a VQ index fell outside its table")
        return {CHUNK_VQ_INDICES: stream}

    @torch.no_grad()
    def decompress_latents(
        self, chunks: Mapping[bytes, bytes], size: tuple[int, int], point: RatePoint,
        version: int
    ) -> VQLatents:
        require_chunks(chunks, (CHUNK_VQ_INDICES,))
        c = self.config
        h, w = size[0] // FAMILY.latent_stride, size[1] // FAMILY.latent_stride
        decoder = SymbolDecoder(chunks[CHUNK_VQ_INDICES], iter(()))  # no escapes in VQIX
        units = self.units(point)
        decoded: dict[int, np.ndarray] = {}
        z_hat = torch.zeros(c.groups, h * w, c.group_dim, dtype=torch.float64)
        books = self.index_model.vq.codebooks
        for u in units:
            table = u * c.contexts + self._contexts(u, decoded, h * w)
            symbols = decoder.decode(table, self.tables)
            if symbols.min(initial=0) < 0 or symbols.max(initial=0) >= c.codebook_size:
                raise CorruptFileError("VQ index stream is damaged (index out of range)")
            decoded[u] = symbols
            stage, group = divmod(u, c.groups)
            z_hat[group] += books[stage, group][torch.from_numpy(symbols)]
        z_hat = from_groups(z_hat, (1, c.M, h, w)).float()
        indices = np.stack([decoded[u] for u in units])
        return VQLatents(indices, units, z_hat)

    @torch.no_grad()
    def synthesize(self, latents: VQLatents, point: RatePoint) -> np.ndarray:
        device = next(self.model.parameters()).device
        return to_array(self.model.synthesis(latents.z_hat.to(device)).float())


def load(info: ModelInfo, device: str | torch.device = "cpu", backend: str | None = None
         ) -> VQCoder:
    """A VQ-VAE model's coder on ``device``: torch is this family's only backend."""
    if backend not in (None, "torch"):
        raise AecError(f"model '{info.name}': the VQ-VAE family runs on torch only")
    from safetensors.torch import load_file

    try:
        config = VQConfig.from_dict(info.card["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise AecError(f"model '{info.name}': invalid VQ config ({exc})") from None
    model = VQAutoencoder(config)
    stored = load_file(str(info.weights))
    cdfs = stored.pop(TABLES, None)
    if cdfs is None:
        raise AecError(f"model '{info.name}': weights file lacks {TABLES}")
    load_state(model, stored, info)
    model.eval().to(device)
    return VQCoder(info, model, cdfs.numpy())
