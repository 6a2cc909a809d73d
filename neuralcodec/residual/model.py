"""The residual's probability model: one small network per decoding pass.

Each pass's network maps a position's context (:mod:`.context`) to the mean and the log
scale of a logistic over the residual, in levels. Without hidden layers it is a linear
predictor of the mean and of the log scale (the least-squares baseline); with hidden
layers (LeakyReLU between them) it is the trained context model, whose output adds a
linear path from the inputs (``skip``: it starts as the least-squares fit).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .context import TWO_BY_TWO, Pass, Schedule, schedule_with

MEAN_UNIT = 8.0  # the network's first output is the mean in units of 8 levels
LEAK = 0.01


@dataclass
class PassNet:
    weights: list[np.ndarray]  # (inputs, outputs) per layer, float32
    biases: list[np.ndarray]
    skip: tuple[np.ndarray, np.ndarray] | None = None  # (inputs, 2) weight and bias

    def __call__(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, scale) in levels for (positions, features) rows."""
        h = features
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b
            if i < last:
                h = np.maximum(h, LEAK * h)
        if self.skip is not None:
            h = h + (features @ self.skip[0] + self.skip[1])
        return h[:, 0] * MEAN_UNIT, np.exp(np.clip(h[:, 1], -4.0, 6.0))


@dataclass
class ResidualModel:
    schedule: Schedule = TWO_BY_TWO
    nets: dict[Pass, PassNet] = field(default_factory=dict)
    xhat_radius: int = 1  # the context's x̂ window (see context.Features)

    def __call__(self, p: Pass, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.nets[p](features)

    def arrays(self) -> dict[str, np.ndarray]:
        """Flat named arrays (for a ``.npz`` or safetensors file)."""
        out = {"xhat_radius": np.array(self.xhat_radius)}
        for p, net in self.nets.items():
            for i, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
                out[f"c{p.channel}.p{p.phase}.{i}.weight"] = w
                out[f"c{p.channel}.p{p.phase}.{i}.bias"] = b
            if net.skip is not None:
                out[f"c{p.channel}.p{p.phase}.skip.weight"] = net.skip[0]
                out[f"c{p.channel}.p{p.phase}.skip.bias"] = net.skip[1]
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> ResidualModel:
        nets: dict[Pass, PassNet] = {}
        radius = int(arrays["xhat_radius"]) if "xhat_radius" in arrays else 1
        keys = sorted({k.rsplit(".", 2)[0] for k in arrays if k != "xhat_radius"})
        schedule = schedule_with(len({k.split(".")[1] for k in keys}))
        for key in keys:
            c, ph = key.split(".")
            layers = sorted({int(k.split(".")[2]) for k in arrays
                             if k.startswith(key + ".") and ".skip." not in k})
            skip = ((np.asarray(arrays[f"{key}.skip.weight"], np.float32),
                     np.asarray(arrays[f"{key}.skip.bias"], np.float32))
                    if f"{key}.skip.weight" in arrays else None)
            nets[Pass(int(c[1:]), int(ph[1:]), schedule)] = PassNet(
                [np.asarray(arrays[f"{key}.{i}.weight"], np.float32) for i in layers],
                [np.asarray(arrays[f"{key}.{i}.bias"], np.float32) for i in layers], skip)
        return cls(schedule, nets, radius)
