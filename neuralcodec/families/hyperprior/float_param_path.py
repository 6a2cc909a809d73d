"""The entropy-parameter path of format version 1: the model's networks in float64 in
torch (see :mod:`.latent_codec`). Its tables depend on float rounding, so version-1 files
decode reliably only on the machine that wrote them; kept so that they still decode."""

from __future__ import annotations

import copy

import numpy as np
import torch

from ..base import RatePoint
from .latent_codec import channels_first
from .model import HyperpriorCheckerboard


def _nchw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(channels_first(a))


class FloatParamPath:
    """The parameter path in float64 on the CPU (format version 1)."""

    def __init__(self, model: HyperpriorCheckerboard):
        def f64(module):
            return copy.deepcopy(module).to("cpu", torch.float64).eval()

        self.levels = model.config.levels
        self.h_s = f64(model.h_s)
        self.context = f64(model.context)
        self.entropy_parameters = f64(model.entropy_parameters)
        self.gain_z_inv = f64(model.gain_z_inv)
        tables = model.coding_tables()
        self.z_medians = torch.from_numpy(tables.z_medians).view(-1, 1, 1)
        self.scale_table = torch.from_numpy(tables.scale_table)

    @torch.no_grad()
    def hyper(self, z_symbols: np.ndarray, point: RatePoint) -> np.ndarray:
        level = torch.tensor([point.level(self.levels)], dtype=torch.float64)
        hyper = self.h_s((_nchw(z_symbols) + self.z_medians) * self.gain_z_inv(level))
        return hyper[0].permute(1, 2, 0).numpy()

    @torch.no_grad()
    def params(self, hyper: np.ndarray, y_hat_anchor: np.ndarray | None, positions: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        hyper_t = _nchw(hyper)
        ctx = (torch.zeros_like(hyper_t) if y_hat_anchor is None
               else self.context(_nchw(y_hat_anchor)))
        out = self.entropy_parameters(torch.cat([hyper_t, ctx], 1))[0]
        out = out.permute(1, 2, 0)[torch.from_numpy(positions)]  # (P, 2C)
        scales, means = out.chunk(2, 1)
        # First table scale >= the predicted scale (CompressAI's convention).
        idx = torch.searchsorted(self.scale_table, scales.contiguous())
        idx = idx.clamp_(max=len(self.scale_table) - 1)
        return idx.numpy(), means.numpy()
