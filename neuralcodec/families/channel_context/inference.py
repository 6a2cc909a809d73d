"""The channel-context family's coder without torch: the hyperprior's NumPy coder
(:mod:`..hyperprior.inference`: the same transforms on NumPy layers) with this family's
config, chunks, exact integer path built from the weights file and latent codec, so that
it decodes a file to the same latents as the torch coder (:mod:`.coder`).

This is the family's loader: on the CPU it returns :class:`NumpyChannelCoder`, elsewhere
the torch coder, which the NumPy one also hands encoder effort above 1 to.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..hyperprior.coding_tables import CodingTables
from ..hyperprior.inference import NumpyCoder, load_with
from ..zoo import ModelInfo
from . import CHUNK_ESCAPE, CHUNK_HYPER, CHUNK_LATENT, FAMILY
from .architecture import ChannelConfig
from .integer_net import IntegerChannelPath
from .latent_codec import ChannelLatentCodec


class NumpyChannelCoder(NumpyCoder):
    """A loaded channel-context model on NumPy, coding padded images into chunks."""

    family = FAMILY
    chunk_tags = (CHUNK_HYPER, CHUNK_LATENT, CHUNK_ESCAPE)  # z, y, escapes
    torch_module = "neuralcodec.families.channel_context.coder"
    config: ChannelConfig

    @staticmethod
    def read_config(card_config: dict) -> ChannelConfig:
        return ChannelConfig.from_dict(card_config)

    def make_latent_codec(self, state: dict[str, np.ndarray], shifts: dict[str, int],
                          int_gain_z_inv: np.ndarray, tables: CodingTables
                          ) -> ChannelLatentCodec:
        path = IntegerChannelPath.from_weights(state, shifts, int_gain_z_inv, tables,
                                               self.config)
        return ChannelLatentCodec(path, tables, self.config.offsets)


def load(info: ModelInfo, device: str = "cpu") -> Any:
    """The family's coder of a model: on NumPy for the CPU, else in torch on ``device``."""
    return load_with(NumpyChannelCoder, info, device)
