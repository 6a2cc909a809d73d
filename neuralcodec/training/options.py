"""Each trainer's options, and the registry that ``aec train`` is built from.

Torch-free, so that the command line (and its ``--help``) is built without loading a
trainer. A trainer's options are a dataclass: a field's default is the only one there is,
for the Python API and the command line alike, and the field's metadata (:func:`option`)
says how ``aec train`` spells and explains it; fields without it are the API's alone.
What every trainer takes is a field of :class:`RunOptions`; a trainer with another
default declares the field again with that default and keeps the option (its help and
bounds), or gives it its own. :func:`register` names a trainer as the command line spells
it, with its options and the module that trains (``train(opts, log)``) and exports
(``export(run_dir, name, directory)``), imported only when it runs.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..families.channel_context.architecture import ChannelConfig
from ..families.hyperprior.architecture import ModelConfig


@dataclass(frozen=True)
class Spec:
    """How ``aec train`` spells a field (or a key of ``config``) and explains it."""

    help: str
    flag: str | None = None  # default: --field-name
    min: float | None = None
    max: float | None = None
    min_open: bool = False
    choices: tuple[str, ...] | None = None
    directory: bool = False  # the name of an existing folder
    show: Callable[[Any], str] | None = None  # the default as help shows it (default: str)
    implies: Mapping[str, Any] = field(default_factory=dict)  # other fields, when given


def option(help: str, **spec: Any) -> dict:
    """A field's metadata: its ``aec train`` option (see :class:`Spec`)."""
    return {"cli": Spec(help, **spec)}


def config_options(check: Callable[[dict], object], **keys: Spec) -> dict:
    """The ``config`` field's metadata: options that set keys of the config dict (by the
    key's name: ``--N``), ``check`` validating the result (raising ValueError)."""
    return {"cli_keys": (check, keys)}


@dataclass(frozen=True)
class CliOption:
    """One option of one trainer: where its value goes and what it defaults to."""

    name: str  # the parameter's name: steps, channel_order, N
    flag: str  # --steps
    field: str  # the field it sets
    key: str | None  # the key of that field's dict it sets (config options), else None
    type: type  # int, float, str, bool (a flag) or list (comma-separated floats)
    default: Any
    spec: Spec


# -- what every trainer takes ---------------------------------------------------------

@dataclass
class RunOptions:
    """What a run of any trainer takes (see :func:`.loop.run`)."""

    data: list[str]  # folders of training images
    out: str = field(default="runs/default", metadata=option(
        "Run folder; a run with a checkpoint.pt there resumes from it."))
    eval_dir: str | None = field(default=None, metadata=option(
        "Evaluation images (e.g. Kodak), evaluated every --eval-every steps.",
        directory=True))
    eval_images: int = field(default=6, metadata=option(
        "How many of --eval-dir's images (sorted) each evaluation uses.", min=1))
    steps: int = field(default=20000, metadata=option(
        "Steps of the run in all (a resumed run goes on up to this step).", min=1))
    batch_size: int = field(default=8, metadata=option(
        "Crops per step (per process in a data-parallel run).", min=1))
    patch: int = field(default=128, metadata=option(
        "Side of the square training crops, in pixels.", min=64))
    lr: float = field(default=3e-4, metadata=option("Learning rate."))
    lr_drop_at: float = field(default=0.85, metadata=option(
        "Fraction of --steps after which the learning rate is divided by 10.", min=0, max=1))
    eval_every: int = field(default=1000, metadata=option(
        "Steps between evaluations.", min=1))
    checkpoint_every: int = field(default=200, metadata=option(
        "Steps between checkpoints.", min=1))
    log_every: int = 50
    device: str = field(default="auto", metadata=option(
        "Where training runs (auto: CUDA when available).", choices=("auto", "cpu", "cuda")))
    seed: int = field(default=0, metadata=option(
        "Seed of the crops and of the run's other random draws."))
    threads: int | None = None
    init: str | None = field(default=None, metadata=option(
        "Weights a new run starts from (model name or .safetensors file; see --family for "
        "what each family takes from them). A run that resumes ignores it.",
        show=lambda value: "none" if value is None else str(value)))
    config: dict = field(default_factory=dict)  # the architecture: the family's config

    data_parallel: ClassVar[bool] = False  # whether a run may take several processes


# -- the trainers ---------------------------------------------------------------------

@dataclass(frozen=True)
class TrainerEntry:
    """A trainer as the command line knows it."""

    name: str  # as ``aec train --family`` spells it
    options: type[RunOptions]
    module: str  # its train(opts, log) and export(run_dir, name, directory), relative
    summary: str

    def load(self) -> types.ModuleType:
        return importlib.import_module(self.module, __package__)


TRAINERS: dict[str, TrainerEntry] = {}


def register(name: str, module: str, summary: str):
    """Class decorator: the options dataclass of the trainer ``name`` in ``module``."""
    def add(options: type[RunOptions]) -> type[RunOptions]:
        TRAINERS[name] = TrainerEntry(name, options, module, summary)
        return options
    return add


def _lambdas(values: list[float]) -> str:
    return f"{len(values)} levels, {values[0]:g} to {values[-1]:g}"


_WIDTHS = {"N": Spec("Channels of the transforms' hidden layers.", min=8),
           "M": Spec("Latent channels.", min=8)}


@register("hyperprior", ".hyperprior",
          "hyperprior + checkerboard context, the family of the shipped aec-hp-ckbd")
@dataclass
class TrainOptions(RunOptions):
    """The hyperprior family's training (:mod:`.hyperprior`)."""

    aux_lr: float = 1e-3
    clip: float = 1.0
    config: dict = field(
        default_factory=lambda: ModelConfig().to_dict(),
        metadata=config_options(ModelConfig.from_dict, **_WIDTHS, lambdas=Spec(
            "Rate levels, comma-separated lambdas. Given for a run that already has a "
            "checkpoint with other levels, the checkpoint's gains are first moved to these "
            "levels.", show=_lambdas, implies={"relevel": True})))
    relevel: bool = False  # resuming: move the checkpoint's rate levels to config's lambdas
    # -- speed (bf16: see the model and native_bf16) ------------------------------------
    precision: str = field(default="auto", metadata=option(
        "bf16: the transforms' bodies under bfloat16 autocast; auto: bf16 where the device "
        "computes it natively (AVX-512 BF16, AMX, CUDA), else fp32.",
        choices=("auto", "fp32", "bf16")))
    compile: bool = field(default=False, metadata=option(  # falls back to eager
        "torch.compile the training step."))
    channels_last: bool = field(default=False, metadata=option(
        "channels_last memory format."))
    crops_on_device: bool = field(default=False, metadata=option(
        "Keep the training images on the device and crop them there."))
    # -- runs of fixed wall time (a GPU burst) and runs started from shipped weights -----
    seconds: float | None = field(default=None, metadata=option(
        "Stop after this much wall time (checkpointed); --lr-drop-at is then a fraction "
        "of it.", min=0, min_open=True))
    warmup: int = field(default=0, metadata=option(
        "Steps of linear learning-rate warm-up at the start of this process (a new run "
        "from --init, or one resumed without its optimizer's moments).", min=0))

    data_parallel: ClassVar[bool] = True


@register("channel-context", ".channel_context",
          "channel groups + checkerboard + LRP; a new run copies the transforms of --init "
          "and starts the context networks fresh")
@dataclass
class ChannelTrainOptions(TrainOptions):
    """The channel-context family's training (:mod:`.channel_context`); the loss,
    schedule and speed options are the hyperprior's."""

    out: str = "runs/channel"
    # The groups follow M (ChannelConfig.from_dict), so that a warm start from a
    # hyperprior of another width works; moving rate levels is not supported yet.
    config: dict = field(
        default_factory=lambda: {k: v for k, v in ChannelConfig().to_dict().items()
                                 if k != "groups"},
        metadata=config_options(ChannelConfig.from_dict, **_WIDTHS))
    init: str | None = "aec-hp-ckbd"
    freeze_transforms: int = field(default=0, metadata=option(  # steps of the run
        "Steps at the start of the run during which the copied transforms and gains stay "
        "frozen (only the new networks train).", min=0))
    # Latent channel order of a warm start from a hyperprior: "rate" (most bits first, see
    # channel_order_by_rate; its context networks learn several times faster) or "stored".
    channel_order: str = field(default="rate", metadata=option(
        "Warm start from a hyperprior: put the latent channels it spends most bits on "
        "first (in the first groups, which the others are conditioned on), or keep its "
        "stored order.", choices=("rate", "stored")))
    rate_only_while_frozen: bool = True  # False: frozen steps still run g_s (the A/B)


def _vq_config() -> dict:
    from ..families.vq.model import VQConfig  # torch: only when options are made

    return VQConfig().to_dict()


@register("vq", ".vq", "a VQ-VAE on the frozen analysis transform of --init")
@dataclass
class VQTrainOptions(RunOptions):
    """The VQ-VAE family's training (:mod:`.vq`)."""

    out: str = "runs/vq"
    init: str = "aec-hp-ckbd"  # the hyperprior whose analysis transform is kept (frozen)
    warm_start_level: float = 0.0
    eval_images: int = 2
    steps: int = 3000
    lmbda: float = 0.01
    codebook_weight: float = 1.0
    lr: float = field(default=1e-4, metadata=option(
        "Learning rate of the synthesis transform (the codebooks and the prior have their "
        "own)."))
    codebook_lr: float = 1e-3
    prior_lr: float = 1e-2
    init_crops: int = 768
    kmeans_iters: int = 8
    reseed_every: int = 50
    context_every: int = 100
    eval_every: int = 400
    checkpoint_every: int = 100
    log_every: int = 25
    device: str = "cpu"
    config: dict = field(default_factory=_vq_config)


# -- from the command line's values to options ----------------------------------------

@functools.cache
def cli_options(options: type[RunOptions]) -> tuple[CliOption, ...]:
    """The ``aec train`` options of a trainer's options class, in field order."""
    hints = typing.get_type_hints(options)
    found = []
    for f in dataclasses.fields(options):
        spec = _metadata(options, f.name, "cli")
        if spec is not None:
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            found.append(CliOption(f.name, spec.flag or "--" + f.name.replace("_", "-"),
                                   f.name, None, _plain(hints[f.name]), default, spec))
        keys = _metadata(options, f.name, "cli_keys")
        if keys is not None:
            defaults = f.default_factory()
            for key, spec in keys[1].items():
                value = defaults[key]
                kind = list if isinstance(value, (list, tuple)) else type(value)
                found.append(CliOption(key, spec.flag or "--" + key, f.name, key, kind, value,
                                       spec))
    return tuple(found)


def make_options(options: type[RunOptions], data: list[str], values: dict[str, Any]
                 ) -> RunOptions:
    """``options`` for ``data`` with ``values`` (by :class:`CliOption` name, each one an
    option of this class) and the class's defaults for the rest; ValueError names the
    options that made an invalid config."""
    by_name = {o.name: o for o in cli_options(options)}
    kwargs: dict[str, Any] = {}
    keyed: dict[str, list[CliOption]] = {}
    for name, value in values.items():
        opt = by_name[name]
        if opt.key is None:
            kwargs[opt.field] = value
        else:
            if opt.field not in keyed:
                kwargs[opt.field] = _default(options, opt.field)
                keyed[opt.field] = []
            kwargs[opt.field][opt.key] = value
            keyed[opt.field].append(opt)
        kwargs.update(opt.spec.implies)
    for name, given in keyed.items():
        check = _metadata(options, name, "cli_keys")[0]
        try:
            check(kwargs[name])
        except ValueError as exc:
            named = ", ".join(f"{o.flag} {_text(values[o.name])}" for o in given)
            raise ValueError(f"{named}: {exc}") from None
    return options(data=list(data), **kwargs)


def _metadata(options: type, name: str, kind: str) -> Any:
    """A field's metadata of ``kind``, from the nearest class that gives it one (a field
    declared again with another default keeps its option)."""
    for klass in options.__mro__:
        f = getattr(klass, "__dataclass_fields__", {}).get(name)
        if f is not None and kind in f.metadata:
            return f.metadata[kind]
    return None


def _default(options: type, name: str) -> Any:
    f = options.__dataclass_fields__[name]
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def _plain(hint: Any) -> type:
    """int for ``int | None``, and so on."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
    return hint


def _text(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
