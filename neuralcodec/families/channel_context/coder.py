"""The channel-context family's coder: the hyperprior's coder
(:class:`~..hyperprior.coder.TransformCoder`, on a NumPy or torch transforms backend),
since the transforms are the hyperprior's, with this family's parts: config, chunks, the
exact parameter path and latent codec of channel groups, and the refinement objective.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from ..hyperprior.coder import FamilyParts, TransformCoder, load_coder
from ..hyperprior.coding_tables import CodingTables
from ..zoo import ModelInfo
from . import CHUNK_ESCAPE, CHUNK_HYPER, CHUNK_LATENT, FAMILY
from .architecture import ChannelConfig
from .integer_net import IntegerChannelPath
from .latent_codec import ChannelLatentCodec


def _latent_codec(state: Mapping[str, np.ndarray], shifts: Mapping[str, int],
                  int_gain_z_inv: np.ndarray, tables: CodingTables, config: ChannelConfig
                  ) -> ChannelLatentCodec:
    path = IntegerChannelPath.from_weights(state, shifts, int_gain_z_inv, tables, config)
    return ChannelLatentCodec(path, tables, config.offsets)


def _torch_parts() -> tuple[Callable, type]:
    from .refine import ChannelRefiner
    from .weights import read_model

    return read_model, ChannelRefiner


PARTS = FamilyParts(FAMILY, (CHUNK_HYPER, CHUNK_LATENT, CHUNK_ESCAPE),
                    ChannelConfig.from_dict, _latent_codec, _torch_parts)


def load(info: ModelInfo, device: str = "cpu", backend: str | None = None
         ) -> TransformCoder:
    """The channel-context family's coder of a model (see
    :func:`~..hyperprior.coder.load_coder`)."""
    return load_coder(PARTS, info, device, backend)
