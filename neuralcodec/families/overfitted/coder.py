"""The overfitted family's coder: what ``aec encode --model aec-of`` runs per tile.

Encoding fits this tile's latent pyramid and networks (torch, :mod:`.fit`) at the
quality's lambda for the effort's iterations, chooses the networks' quantization steps,
and range-codes both into two chunks (:mod:`.chunks`, docs/bitstream.md).

Decoding is NumPy only: the exact ARM gives every latent's table, the pyramid is
decoded wavefront by wavefront, then upsampled and synthesised in float. The model's
weights file holds no network (every file carries its own): it stores the fixed Laplace
tables, so that a decoder reads them instead of computing them with its own ``exp``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import AecError, CorruptFileError, needs_torch, torch_missing
from ...format.chunks import require_chunks
from ..base import RatePoint, Refinement
from ..zoo import ModelInfo
from . import CHUNK_LATENTS, CHUNK_PARAMETERS, FAMILY
from .architecture import DEFAULT
from .chunks import FitRecord, pack_chunks, unpack_chunks
from .coding import decode_model_latents
from .laplace_tables import install_tables, unpack_tables
from .numpy_synthesis import synthesize

# The card's config this code builds (one architecture so far): decoding reads it.
CONFIG = {"architecture": "of-1", "levels": DEFAULT.levels, "context": DEFAULT.context_size,
          "arm_hidden": DEFAULT.arm_hidden, "upsampling_taps": DEFAULT.upsampling_taps,
          "synthesis_width": DEFAULT.synthesis[0].cout}
# Quality 0..100 -> lambda, log-linearly (encoder only; a file does not depend on it).
LAMBDA_AT_0, LAMBDA_AT_100 = 0.02, 0.0002
SEED = 0  # the fit's seed: a file is the same for the same image, machine and threads
# Test-only: overrides every effort's iterations (a fit of a few iterations in tests).
ITERATIONS_ENV = "AEC_OF_ITERATIONS"

# (iteration, iterations, seconds so far) of the running fit.
FitProgress = Callable[[int, int, float], None]


def lambda_at(point: RatePoint) -> float:
    """The fit's lambda at a rate point: log-linear from LAMBDA_AT_0 to LAMBDA_AT_100."""
    return LAMBDA_AT_0 * (LAMBDA_AT_100 / LAMBDA_AT_0) ** point.fraction


# A rate target's search fits 1/SEARCH_SHARE of the effort's iterations per quality tried.
SEARCH_SHARE = 10


def iterations(effort: int, short: bool = False) -> int:
    """The fit's iterations at an effort level (``short``: a rate search's fit)."""
    override = os.environ.get(ITERATIONS_ENV)
    full = int(override) if override else FAMILY.efforts[effort]
    return max(1, full // SEARCH_SHARE) if short else full


@dataclass
class OverfitLatents:
    """A tile's decoded model: the integer parameters (name -> (integers, step bits))
    and the integer latent grids, finest first."""

    parameters: dict[str, tuple[np.ndarray, int]]
    grids: list[np.ndarray]


class OverfitCoder:
    """The model ``aec-of``: no trained network; every tile is fitted when encoded."""

    family = FAMILY
    pad_multiple = FAMILY.pad_multiple
    formats = FAMILY.formats
    max_effort = FAMILY.max_effort

    def __init__(self, info: ModelInfo, device: str = "cpu"):
        self.name = info.name
        self.fingerprint = info.fingerprint
        self.card = info.card
        self.device = str(device)
        self.arch = DEFAULT
        # Set by a caller that shows the fit's progress (the command line).
        self.fit_progress: FitProgress | None = None
        self._short = False

    @contextmanager
    def short_fits(self) -> Iterator[None]:
        """Within the block, fits take 1/SEARCH_SHARE of their iterations (and report no
        progress): the codec's search of a rate target runs on them."""
        progress, self.fit_progress, self._short = self.fit_progress, None, True
        try:
            yield
        finally:
            self.fit_progress, self._short = progress, False

    def analyse(self, x: np.ndarray) -> np.ndarray:
        return x  # nothing is amortized: the fit at compress time is the analysis

    def compress(self, features: np.ndarray, point: RatePoint, version: int,
                 refinement: Refinement | None = None) -> dict[bytes, bytes]:
        effort, size = (1, None) if refinement is None else (refinement.effort,
                                                             refinement.size)
        try:
            from .fitting import fit_and_code
        except ModuleNotFoundError as exc:
            if not torch_missing(exc):
                raise
            raise needs_torch(f"encoding with model '{self.name}' (it fits each image)"
                              ) from None
        image = np.round(features * 255).astype(np.uint8)  # the input's own levels
        record = FitRecord(iterations(effort, self._short), lambda_at(point))
        coded = fit_and_code(image, record.lmbda, record.iterations, size, self.device,
                             SEED, self.fit_progress)
        return pack_chunks(coded, record)

    def decompress_latents(self, chunks: Mapping[bytes, bytes], size: tuple[int, int],
                           point: RatePoint, version: int) -> OverfitLatents:
        require_chunks(chunks, (CHUNK_PARAMETERS, CHUNK_LATENTS))
        coded, _ = unpack_chunks(chunks, self.arch)
        try:
            parameters, grids = decode_model_latents(self.arch, coded, *size)
        except (ValueError, IndexError, OverflowError) as exc:  # a damaged stream
            raise CorruptFileError(f"chunk {CHUNK_PARAMETERS.decode()} or "
                                   f"{CHUNK_LATENTS.decode()} is damaged ({exc})") from None
        return OverfitLatents(parameters, grids)

    def synthesize(self, latents: OverfitLatents, point: RatePoint) -> np.ndarray:
        return synthesize(self.arch, latents.grids, latents.parameters)


def read_tables(info: ModelInfo) -> None:
    """Install the model's stored Laplace tables for every coder in this process."""
    from safetensors.numpy import load_file

    try:
        install_tables(unpack_tables(load_file(str(info.weights))))
    except (KeyError, ValueError, OSError) as exc:
        raise AecError(f"model '{info.name}': its Laplace tables are unreadable ({exc})"
                       ) from None


def load(info: ModelInfo, device: Any = "cpu", backend: str | None = None) -> OverfitCoder:
    """The coder of an overfitted model: decoding runs on NumPy; the fit on ``device``."""
    if backend not in (None, "numpy", "torch"):
        raise AecError(f"model '{info.name}': unknown backend {backend!r}")
    if info.card.get("config") != CONFIG:
        raise AecError(f"model '{info.name}': this aec builds only the overfitted "
                       f"architecture {CONFIG['architecture']}")
    read_tables(info)
    return OverfitCoder(info, device)
