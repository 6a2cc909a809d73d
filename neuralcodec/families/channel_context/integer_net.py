"""The exact integer parameter path of the channel-context family.

The same integer arithmetic as the hyperprior's (:mod:`..hyperprior.integer_net`:
activations on a 2**-10 grid clamped to ±2**20, int16 weights with a power-of-two shift
per layer, exact float64 sums, LeakyReLU as ``floor(41 x / 4096)``) for every network
that decides a table index or a mean or feeds a later context: the hyper-synthesis,
each group's channel context, spatial context and parameter network, and the latent
residual prediction, whose clamp to ±½ is exact on the grid.

Worst-case accumulator: the widest layers are the hyperprior's ``h_s`` deconvolutions
(128 × 5 × 5 = 3200 inputs per output); of the new networks, the spatial context of the
64-channel groups (64 × 5 × 5 = 1600, of which the 12 anchor taps are summed), then group
4's channel context (128 × 3 × 3 = 1152): 2**20 · 2**14 · 3200 < 2**46, far below 2**53
(:func:`~..hyperprior.integer_net.quantize_layer` checks every layer).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..hyperprior.architecture import hyper_synthesis
from ..hyperprior.coding_tables import CodingTables
from ..hyperprior.integer_net import (
    ACT_LIMIT,
    FRAC_BITS,
    IntegerHyperPath,
    IntegerLayer,
    anchor_context,
    integer_network,
)
from ..specs import Conv
from . import architecture
from .architecture import LRP_BOUND, ChannelConfig

_LRP_LIMIT = LRP_BOUND * 2**FRAC_BITS


def _grid(real: np.ndarray) -> np.ndarray:
    """Real values on the 2**-FRAC_BITS grid as the integers the layers take."""
    return np.clip(real * 2**FRAC_BITS, -ACT_LIMIT, ACT_LIMIT)


class IntegerChannelPath(IntegerHyperPath):
    """Table indices and means of each channel group, and its LRP, in exact integers.

    Arrays crossing the interface are channels-last float64 holding real values on the grid
    (means, decoded latents) or, for context features, the integers themselves (``cc``).
    Built from weight arrays (:meth:`from_weights`): a weights file's (no torch) or a torch
    model's state, the same integer layers either way.
    """

    def __init__(self, h_s: list[IntegerLayer], channel_context: dict[int, list[IntegerLayer]],
                 spatial_context: list[IntegerLayer],
                 group_parameters: list[list[IntegerLayer]], lrp: list[list[IntegerLayer]],
                 groups: tuple[int, ...], int_gain_z_inv: np.ndarray, tables: CodingTables):
        super().__init__(h_s, int_gain_z_inv, tables)
        self.groups = groups
        self.channel_context = channel_context
        self.spatial_context = spatial_context
        self.group_parameters = group_parameters
        self.lrp = lrp
        self._tap_weights: list[dict[int, np.ndarray]] = [{} for _ in self.groups]

    @classmethod
    def from_weights(cls, weights: Mapping[str, np.ndarray], shifts: Mapping[str, int] | None,
                     int_gain_z_inv: np.ndarray, tables: CodingTables, config: ChannelConfig
                     ) -> IntegerChannelPath:
        """The path of a model's float weights (arrays by state-dict name)."""
        def net(network: tuple, prefix: str) -> list[IntegerLayer]:
            return integer_network(network, weights, prefix, shifts)

        def single(layer: Conv, prefix: str) -> IntegerLayer:
            return integer_network((layer,), weights, prefix, shifts, single=True)[0]

        ks = range(len(config.groups))
        return cls(
            net(hyper_synthesis(config.N, config.M), "h_s"),
            {k: net(architecture.channel_context(config, k), f"channel_context.{k}")
             for k in ks if k},
            [single(architecture.spatial_context(config, k), f"spatial_context.{k}") for k in ks],
            [net(architecture.group_parameters(config, k), f"group_parameters.{k}") for k in ks],
            [net(architecture.lrp(config, k), f"lrp.{k}") for k in ks],
            config.groups, int_gain_z_inv, tables)

    def channel(self, k: int, y_hat_before: np.ndarray | None) -> np.ndarray | None:
        """Group k's channel context (integers, (h, w, 2g)) from the decoded groups
        before it (real, (h, w, C)); None for group 0."""
        if k == 0:
            return None
        return self._run(self.channel_context[k], _grid(y_hat_before), f"channel_context.{k}")

    def params(self, k: int, hyper: np.ndarray, cc: np.ndarray | None,
               y_hat_anchor: np.ndarray | None, positions: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """(table index as int64, mean as real float64), each (P, g), of group k at the P
        ``positions`` (an (h, w) mask of one checkerboard colour, raster order); the
        spatial context comes from the group's decoded anchors (None: anchors, zeros)."""
        rows = [hyper[positions]]  # (P, channels)
        if cc is not None:
            rows.append(cc[positions])
        if y_hat_anchor is not None:  # else the context is zeros: rows() leaves them out
            sc = anchor_context(self.spatial_context[k], y_hat_anchor, positions,
                                self._tap_weights[k])
            rows.append(self._record(f"spatial_context.{k}", sc))
        a = np.concatenate(rows, 1)
        for i, layer in enumerate(self.group_parameters[k]):
            a = self._record(f"group_parameters.{k}[{i}]", layer.rows(a))
        scales, means = np.split(a, 2, axis=1)
        return self.table_index(scales), means * 2.0**-FRAC_BITS

    def residual(self, k: int, means: np.ndarray, cc: np.ndarray | None, y_hat: np.ndarray
                 ) -> np.ndarray:
        """Group k's LRP correction (real, on the grid, |c| <= 1/2) from its means and
        decoded latents (real, (h, w, g)) and channel context (integers)."""
        parts = [_grid(means), _grid(y_hat)] if cc is None else [_grid(means), cc, _grid(y_hat)]
        out = self._run(self.lrp[k], np.concatenate(parts, 2), f"lrp.{k}")
        return np.clip(out, -_LRP_LIMIT, _LRP_LIMIT) * 2.0**-FRAC_BITS


def layers_of(path: IntegerChannelPath) -> dict[str, list[IntegerLayer]]:
    """Every integer network of the path by name (for tests and calibration)."""
    nets = {"h_s": path.h_s}
    nets.update({f"channel_context.{k}": v for k, v in path.channel_context.items()})
    nets.update({f"spatial_context.{k}": [v] for k, v in enumerate(path.spatial_context)})
    nets.update({f"group_parameters.{k}": v for k, v in enumerate(path.group_parameters)})
    nets.update({f"lrp.{k}": v for k, v in enumerate(path.lrp)})
    return nets
