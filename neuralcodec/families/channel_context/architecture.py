"""The channel-context family's config and its context networks as data (see
:mod:`..specs`): what both the torch model (:mod:`.model`) and the exact integer path
built from a weights file (:mod:`.integer_net`) are made of, without torch. The
transforms are the hyperprior's (:mod:`..hyperprior.architecture`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..hyperprior.architecture import ModelConfig
from ..specs import Conv, Layer, LeakyReLU

LRP_BOUND = 0.5  # |correction| <= 1/2 quantization step


@dataclass(frozen=True)
class ChannelConfig(ModelConfig):
    """The hyperprior's config plus the channel groups and the context networks' widths."""

    groups: tuple[int, ...] = (16, 16, 32, 64, 64)
    # Hidden width of group k's channel context (k >= 1), one per group after the first.
    channel_hidden: tuple[int, ...] = (64, 64, 64, 64)
    parameter_hidden: tuple[int, int] = (320, 256)
    lrp_hidden: int = 32
    spatial_width: int | None = None  # spatial context features per group (None: M)

    def __post_init__(self) -> None:
        super().__post_init__()
        if sum(self.groups) != self.M or min(self.groups) < 1:
            raise ValueError(f"channel groups {self.groups} must split M={self.M} channels")
        if len(self.channel_hidden) != len(self.groups) - 1:
            raise ValueError("channel_hidden needs one width per group after the first")

    def to_dict(self) -> dict:
        d = super().to_dict()
        for key in ("groups", "channel_hidden", "parameter_hidden"):
            d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ChannelConfig:
        """From a card's config; a hyperprior config (no groups) gets the defaults."""
        base = ModelConfig.from_dict(d)
        extra = {}
        for key in ("groups", "channel_hidden", "parameter_hidden"):
            if key in d:
                extra[key] = tuple(int(v) for v in d[key])
        for key in ("lrp_hidden", "spatial_width"):
            if d.get(key) is not None:
                extra[key] = int(d[key])
        if "groups" not in d and base.M != sum(cls.groups):
            # Defaults for another M: the fixed small groups, the rest in the last one.
            extra["groups"] = (16, 16, 32, 64, base.M - 128)
        return cls(N=base.N, M=base.M, lambdas=base.lambdas, **extra)

    @property
    def spatial_features(self) -> int:
        return self.spatial_width or self.M

    @property
    def offsets(self) -> tuple[int, ...]:
        """First channel of each group, and M."""
        out = [0]
        for g in self.groups:
            out.append(out[-1] + g)
        return tuple(out)


def leaky_stack(widths: list[int], kernels: list[int]) -> tuple[Layer, ...]:
    """Stride-1 convolutions through ``widths`` with LeakyReLU between them."""
    layers: list[Layer] = []
    for i, k in enumerate(kernels):
        if i:
            layers.append(LeakyReLU())
        layers.append(Conv(widths[i], widths[i + 1], k, 1))
    return tuple(layers)


def channel_context_width(config: ChannelConfig, k: int) -> int:
    """Features of group k's channel context (none for the first group)."""
    return 2 * config.groups[k] if k else 0


def channel_context(config: ChannelConfig, k: int) -> tuple[Layer, ...]:
    """Group k's (k >= 1) channel context on the decoded groups before it."""
    return leaky_stack([config.offsets[k], config.channel_hidden[k - 1],
                        channel_context_width(config, k)], [3, 3])


def spatial_context(config: ChannelConfig, k: int) -> Conv:
    """Group k's spatial context: a 5x5 convolution over its decoded anchors."""
    return Conv(config.groups[k], config.spatial_features, 5, 1)


def group_parameters(config: ChannelConfig, k: int) -> tuple[Layer, ...]:
    """Group k's parameter network: [hyper, channel ctx, spatial ctx] to (scales, means)."""
    e1, e2 = config.parameter_hidden
    inputs = config.M + channel_context_width(config, k) + config.spatial_features
    return leaky_stack([inputs, e1, e2, 2 * config.groups[k]], [1, 1, 1])


def lrp(config: ChannelConfig, k: int) -> tuple[Layer, ...]:
    """Group k's latent residual prediction: [means, channel ctx, ŷ_k] to a correction."""
    g = config.groups[k]
    return leaky_stack([2 * g + channel_context_width(config, k), config.lrp_hidden, g],
                       [1, 3])
