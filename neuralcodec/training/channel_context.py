"""Training the channel-context family, warm-started from a hyperprior model.

A new run starts from a ``hyperprior-checkerboard`` model's weights (``init``, by default
the shipped ``aec-hp-ckbd``): its transforms (``g_a``, ``g_s``, ``h_a``, ``h_s``), gain
banks and entropy models are copied; each group's spatial context and parameter network
start as the hyperprior's restricted to the group (where the widths match,
:func:`inherit_hyperprior_context`), the channel contexts fresh, LRP as no correction.
For the first ``freeze_transforms`` steps only the new context networks (and the entropy
models) train, so early CPU time goes to them; then everything does. Those frozen steps
hold the LRP still too and train on the rate alone, without running ``g_s``: the means
reach ``ŷ`` only through straight-through rounding (zero gradient) and through the LRP,
which a warm start begins as zero weights, so until the LRP trains the distortion's
gradient to every trainable network is zero and the rate alone gives the same step. The
LRP trains from the first step after.
The loss, rate levels, schedule, checkpoints and resume are the hyperprior's
(:mod:`.hyperprior`); a run may also start from a model of this family.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from ..families.channel_context import FAMILY
from ..families.channel_context.model import ChannelCheckerboard, ChannelConfig
from ..families.channel_context.weights import save_model
from . import distributed
from .distributed import World
from .hyperprior import HyperpriorTrainer
from .loop import CHECKPOINT, RunSetup, run
from .options import ChannelTrainOptions, TrainOptions

# What a warm start copies, and what ``freeze_transforms`` holds still (the LRP too: its
# training needs the distortion, which the frozen steps leave out).
COPIED = ("g_a.", "g_s.", "h_a.", "h_s.", "gain_", "entropy_bottleneck.",
          "gaussian_conditional.")
FROZEN = ("g_a", "g_s", "h_a", "h_s", "gain_y", "gain_y_inv", "gain_z", "gain_z_inv", "lrp")


def new_model(config: ChannelConfig | None = None) -> ChannelCheckerboard:
    """A channel-context model with trainable entropy models."""
    with warnings.catch_warnings():
        # compressai 1.2.8 calls the deprecated torch.jit.script at import time.
        warnings.simplefilter("ignore", FutureWarning)
        from compressai.entropy_models import EntropyBottleneck, GaussianConditional
    config = config or ChannelConfig()
    return ChannelCheckerboard(config,
                               (EntropyBottleneck(config.N), GaussianConditional(None)))


def warm_state(init: str, config: dict | None = None, channel_order: str = "stored",
               data: list[str] | None = None) -> dict:
    """A new run's starting point from the weights ``init`` (model name or file), as a
    checkpoint-like state without optimizer moments.

    From a hyperprior model: its transforms, gains and entropy models, fresh context
    networks (shaped by ``config``'s groups and widths; N, M and the lambdas are the
    init's), its latent channels first reordered by ``channel_order`` ("rate": by their
    bits on images of ``data``, see :func:`channel_order_by_rate`). From a model of this
    family: all of it, its step count going on."""
    from ..families.hyperprior.weights import read_state
    from ..families.zoo import find_model

    info = find_model(init)
    weights, _, _ = read_state(info)
    training = info.card.get("training", {})
    if info.family == FAMILY.name:
        return {"model": weights, "optimizer": {"state": {}},
                "step": training.get("steps", 0), "options": {"config": info.card["config"]},
                "relevels": training.get("relevels", [])}
    if info.family != "hyperprior-checkerboard":
        raise ValueError(f"cannot warm-start from '{info.name}' of family {info.family}")
    if channel_order == "rate":
        weights = permute_latent_channels(
            weights, channel_order_by_rate(weights, info.card["config"], data or []))
    elif channel_order != "stored":
        raise ValueError(f"unknown channel order '{channel_order}' (stored or rate)")
    arch = {k: v for k, v in (config or {}).items() if k not in ("N", "M", "lambdas")}
    cfg = ChannelConfig.from_dict({**info.card["config"], **arch})
    state = new_model(cfg).state_dict()
    copied = {k: v for k, v in weights.items() if k.startswith(COPIED) and k in state}
    missing = [k for k in state if k.startswith(COPIED[:5]) and k not in copied]
    if missing:
        raise ValueError(f"'{info.name}' lacks {missing[0]} (not a matching hyperprior)")
    state.update(copied)
    inherit_hyperprior_context(state, weights, cfg)
    return {"model": state, "optimizer": {"state": {}}, "step": 0,
            "options": {"config": cfg.to_dict()}, "relevels": []}


# A hyperprior's tensors indexed by y's channels: (name, axis), and the parameter
# network's last layer, whose rows are (scales, means) of each channel.
_LATENT_AXES = (("g_a.6.weight", 0), ("g_a.6.bias", 0), ("g_s.0.weight", 0),
                ("h_a.0.weight", 1), ("gain_y.log_gain", 1), ("gain_y_inv.log_gain", 1),
                ("context.weight", 1))
_PARAMETER_ROWS = ("entropy_parameters.4.weight", "entropy_parameters.4.bias")


def permute_latent_channels(weights: dict[str, Tensor], order: Tensor) -> dict[str, Tensor]:
    """The same hyperprior model with its latent channels reordered: channel ``i`` of the
    result is channel ``order[i]`` of ``weights``. Each network that makes or reads
    ``y`` is permuted along that axis, so the model computes the same (up to summation
    order): only which channels the channel-context groups hold changes."""
    M = len(order)
    out = dict(weights)
    for name, axis in _LATENT_AXES:
        out[name] = weights[name].index_select(axis, order)
    rows = torch.cat([order, order + M])  # scales, then means
    for name in _PARAMETER_ROWS:
        out[name] = weights[name].index_select(0, rows)
    return out


def channel_order_by_rate(weights: dict[str, Tensor], config: dict, data: list[str],
                          images: int = 16, side: int = 512,
                          levels: tuple[float, ...] = (1.0, 4.0, 7.0)) -> Tensor:
    """y's channels by how many bits the hyperprior ``weights`` spend on them, most first:
    the likelihood bits of each channel on ``images`` training images (spread over
    ``data``, long side ``side``), as a share of each level's total, summed over
    ``levels``. Channel-context groups decoded first then hold the channels that say
    most about the others: where ELIC (He et al. 2022) trains with the channel context
    from the start, its first channels come to hold most of the energy; a model trained
    without one has no such order, so the warm start makes it."""
    from ..families.hyperprior import PAD_MULTIPLE
    from ..families.hyperprior.architecture import ModelConfig
    from .data import list_images, load_rgb, pad
    from .hyperprior import new_model

    paths = list_images(data)
    if not paths:
        raise ValueError("ordering channels by rate needs training images")
    picked = paths[:: max(1, len(paths) // images)][:images]
    model = new_model(ModelConfig.from_dict(config))
    model.load_state_dict({k: v.float() for k, v in weights.items()})
    model.eval()
    model.transform_autocast = None
    share = torch.zeros(model.config.M, dtype=torch.float64)
    with torch.no_grad():
        inputs = [pad(load_rgb(p, side).float().unsqueeze(0) / 255.0, PAD_MULTIPLE)
                  for p in picked]
        for level in levels:
            bits = torch.zeros_like(share)
            for x in inputs:
                likelihoods = model(x, torch.tensor([level]))["likelihoods"]["y"]
                bits += (-torch.log2(likelihoods)).sum((0, 2, 3)).double()
            share += bits / bits.sum()
    return torch.argsort(share, descending=True, stable=True)


def inherit_hyperprior_context(state: dict[str, Tensor], hyperprior: dict[str, Tensor],
                               config: ChannelConfig) -> bool:
    """Start each group's spatial context and parameter network (in ``state``) as the
    hyperprior's ``context`` and ``entropy_parameters`` restricted to the group.

    The hyperprior's first parameter layer sees [hyper, context(all anchors)]; group k's
    sees [hyper, channel ctx, spatial_context[k](its own anchors)]. With the spatial
    context as the hyperprior's context kernels of the group's input channels, the first
    layer's hyper and context columns copied, its channel-context columns zero and the
    last layer's rows those of the group's channels, a group's anchors get exactly the
    hyperprior's parameters and its non-anchors the hyperprior's from the group's own
    anchors (the other groups' anchors, which the channel context sees instead, start
    unused). Returns False (``state`` untouched) where the widths differ."""
    M = config.M
    context, first = hyperprior["context.weight"], hyperprior["entropy_parameters.0.weight"]
    if (tuple(first.shape[:2]) != (config.parameter_hidden[0], 2 * M)
            or hyperprior["entropy_parameters.2.weight"].shape[0] != config.parameter_hidden[1]
            or config.spatial_features != M):
        return False
    last_w = hyperprior["entropy_parameters.4.weight"]
    last_b = hyperprior["entropy_parameters.4.bias"]
    offsets = config.offsets
    for k in range(len(config.groups)):
        a, b = offsets[k], offsets[k + 1]
        rows = torch.cat([torch.arange(a, b), torch.arange(M + a, M + b)])
        state[f"spatial_context.{k}.weight"] = context[:, a:b].clone()
        state[f"spatial_context.{k}.bias"] = hyperprior["context.bias"].clone()
        cc = state[f"group_parameters.{k}.0.weight"].shape[1] - 2 * M
        state[f"group_parameters.{k}.0.weight"] = torch.cat(
            [first[:, :M], first.new_zeros(first.shape[0], cc, 1, 1), first[:, M:]], 1)
        state[f"group_parameters.{k}.0.bias"] = hyperprior["entropy_parameters.0.bias"].clone()
        for key in ("2.weight", "2.bias"):
            state[f"group_parameters.{k}.{key}"] = hyperprior[f"entropy_parameters.{key}"].clone()
        state[f"group_parameters.{k}.4.weight"] = last_w[rows].clone()
        state[f"group_parameters.{k}.4.bias"] = last_b[rows].clone()
    return True


def set_frozen(model: ChannelCheckerboard, frozen: bool) -> None:
    """Hold the copied transforms, gains and the LRP still (no gradients, so no updates)
    or not."""
    for name in FROZEN:
        getattr(model, name).requires_grad_(not frozen)


class ChannelTrainer(HyperpriorTrainer):
    """The hyperprior's trainer with this family's model and warm start."""

    def config_of(self, config: dict) -> ChannelConfig:
        return ChannelConfig.from_dict(config)

    def new_model(self, config: ChannelConfig) -> ChannelCheckerboard:
        return new_model(config)

    def initial_state(self, opts: TrainOptions) -> dict:
        return warm_state(opts.init, opts.config, getattr(opts, "channel_order", "rate"),
                          opts.data)

    def start(self, state: dict | None, resumed: bool, setup: RunSetup, world: World,
              log: Callable[[str], None]) -> int:
        if self.opts.relevel:
            raise ValueError("moving rate levels is not supported for this family yet")
        step = super().start(state, resumed, setup, world, log)
        self.first_step = step if not resumed else (state or {}).get("first_step", 0)
        self.frozen = False  # as the model was built (and wrapped)
        return step

    def train_step(self, x: Tensor, step: int, elapsed: float, steps_here: int
                   ) -> dict[str, float] | None:
        frozen = step - self.first_step < getattr(self.opts, "freeze_transforms", 0)
        if frozen != self.frozen:
            set_frozen(self.model, frozen)
            self.frozen = frozen
            # A data-parallel wrapper reduces the gradients of the parameters that were
            # trainable when it was built: wrap (and compile) again.
            forward = distributed.wrap(self.model, self.world)
            self.forward = torch.compile(forward) if self.opts.compile else forward
        return super().train_step(x, step, elapsed, steps_here)

    def rate_only(self) -> bool:
        return self.frozen and getattr(self.opts, "rate_only_while_frozen", True)

    def state(self) -> dict:
        return {**super().state(), "first_step": self.first_step}


def train(opts: ChannelTrainOptions, log: Callable[[str], None] = print) -> Path:
    """Train a channel-context model (resuming from ``opts.out``/checkpoint.pt if present,
    else warm-started from ``opts.init``); returns the run folder."""
    return run(opts, ChannelTrainer(opts), log)


def export(run_dir: str | Path, name: str, directory: str | Path, card: dict | None = None
           ) -> Path:
    """Turn a run's checkpoint into shippable weights (safetensors + JSON card)."""
    state = torch.load(Path(run_dir) / CHECKPOINT, map_location="cpu", weights_only=True)
    model = new_model(ChannelConfig.from_dict(state["options"]["config"]))
    model.load_state_dict(state["model"])
    info = {"training": {"steps": state["step"], "options": state["options"],
                         "relevels": state.get("relevels", [])}}
    info.update(card or {})
    return save_model(model, Path(directory), name, info)
