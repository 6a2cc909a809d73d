"""The overfitted decoder described as data (no torch): the latent pyramid, the ARM's
causal context and sizes, the upsampling and the synthesis. The torch fit
(:mod:`.model`) and the NumPy coder (:mod:`.latent_codec`) are both built from it.
Design and sources: docs/overfitted.md."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Causal neighbours (row, column offsets) of a latent in its own grid, in Cool-chic's
# priority order (the first 16 of its 9x9 mask): nearest first.
CONTEXT_16 = ((0, -1), (-1, 0), (-1, -1), (-1, 1), (0, -2), (-2, 0), (-3, 0), (0, -3),
              (-1, -2), (-2, 1), (-2, -1), (-1, 2), (-2, -2), (-1, -3), (-2, 2), (-3, 1))

# Bicubic (Keys, a = -0.5: Catmull-Rom, which keeps linear ramps) half-kernel of a x2
# upsampling filter, far tap to near tap; the full 8-tap kernel is it and its mirror.
# All four are dyadic.
BICUBIC_HALF = (-0.0234375, -0.0703125, 0.2265625, 0.8671875)


@dataclass(frozen=True)
class SynthesisLayer:
    cin: int
    cout: int
    k: int  # 1 or 3 (padding k // 2, replicate borders)
    relu: bool
    residual: bool  # output = relu?(layer(x)) + x (cin == cout)


@dataclass(frozen=True)
class OverfitArchitecture:
    levels: int = 7  # latent grids, full resolution down to 1/2**(levels-1)
    context: tuple[tuple[int, int], ...] = CONTEXT_16
    arm_hidden: int = 2  # residual context-width layers with ReLU before the output layer
    upsampling_taps: int = 8  # even: a symmetric x2 transposed filter of this length
    synthesis: tuple[SynthesisLayer, ...] = (
        SynthesisLayer(7, 40, 1, True, False),
        SynthesisLayer(40, 3, 1, False, False),
        SynthesisLayer(3, 3, 3, True, True),
        SynthesisLayer(3, 3, 3, False, True),
    )

    def __post_init__(self) -> None:
        if self.synthesis[0].cin != self.levels or self.synthesis[-1].cout != 3:
            raise ValueError("the synthesis must take one channel per grid and give RGB")
        for dr, dc in self.context:
            if dr > 0 or (dr == 0 and dc >= 0):
                raise ValueError(f"context offset {(dr, dc)} is not causal")

    @property
    def context_size(self) -> int:
        return len(self.context)

    @property
    def pad_multiple(self) -> int:
        """Images are padded to this, so that every grid halves exactly."""
        return 2 ** (self.levels - 1)

    def grid_shapes(self, height: int, width: int) -> list[tuple[int, int]]:
        return [(height >> i, width >> i) for i in range(self.levels)]

    @property
    def wavefront_slope(self) -> int:
        """k such that every context position of (r, c) lies on an earlier wavefront
        c + k*r: k > dc / -dr for each neighbour on an earlier row."""
        return max(int(np.floor(dc / -dr)) + 1 for dr, dc in self.context if dr < 0)

    def parameter_layout(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """Every network parameter's shape and quantization group, in coding order (group
        by group, layers in order): what a decoder reads without torch."""
        c, arm_layers = self.context_size, self.arm_hidden + 1
        arm_out = [c] * self.arm_hidden + [2]
        groups: dict[str, dict[str, tuple[int, ...]]] = {
            "arm.weight": {f"arm.{i}.weight": (arm_out[i], c) for i in range(arm_layers)},
            "arm.bias": {f"arm.{i}.bias": (arm_out[i],) for i in range(arm_layers)},
            "upsampling": {"upsampling": (self.levels - 1, self.upsampling_taps // 2)},
            "synthesis.weight": {f"synthesis.{i}.weight": (s.cout, s.cin, s.k, s.k)
                                 for i, s in enumerate(self.synthesis)},
            "synthesis.bias": {f"synthesis.{i}.bias": (s.cout,)
                               for i, s in enumerate(self.synthesis)},
        }
        return {name: (shape, group) for group, members in groups.items()
                for name, shape in members.items()}

    @property
    def parameter_groups(self) -> list[str]:
        return list(dict.fromkeys(group for _, group in self.parameter_layout().values()))

    def mac_per_pixel(self) -> float:
        """Multiply-accumulates per decoded pixel (ARM, upsampling, synthesis)."""
        c = self.context_size
        arm = self.arm_hidden * c * c + 2 * c
        latents_per_pixel = sum(4.0 ** -i for i in range(self.levels))
        # Grid i goes through i x2 steps; a step costs taps/2 MAC per output sample along
        # each axis, at the step's output resolution (4**-(i-j-1) of the pixels).
        half = self.upsampling_taps // 2
        ups = sum(2 * half * 4.0 ** -(i - j - 1) for i in range(self.levels) for j in range(i))
        synth = sum(layer.cin * layer.cout * layer.k * layer.k for layer in self.synthesis)
        return arm * latents_per_pixel + ups + synth


DEFAULT = OverfitArchitecture()
