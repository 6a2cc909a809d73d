"""The train command, built from the trainers' options (:mod:`neuralcodec.training.options`).

Each option is a field of a trainer's options dataclass, its default and help defined
there once. ``--family`` picks the trainer; an option that family's trainer does not take
is a usage error. ``aec train --help`` lists every family's options, with each family's
default where they differ; ``aec train --family F --help`` lists F's alone, with F's
defaults.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click
from click.core import ParameterSource

from ..errors import AecError
from ..training.options import TRAINERS, CliOption, cli_options, make_options
from .common import say

DEFAULT_FAMILY = "hyperprior"
_FAMILY_META = "aec.train.family"  # the --family of the command line, for its help


class _Option(click.Option):
    """An option whose help shows ``default_text`` as its default: the definition's
    default (for one family) or each family's."""

    def __init__(self, *args, default_text: str | None = None, **kwargs):
        if default_text and not hasattr(click.Option, "get_help_extra"):  # click < 8.2
            kwargs["help"] = f"{kwargs.get('help', '')}  [default: {default_text}]"
            default_text = None
        super().__init__(*args, **kwargs)
        self.default_text = default_text

    def get_help_extra(self, ctx: click.Context):
        extra = super().get_help_extra(ctx)
        extra.pop("default", None)
        if self.default_text:
            extra["default"] = self.default_text
        return extra


def _shown(opt: CliOption) -> str | None:
    """The default of ``opt`` as help shows it (None: none shown)."""
    value = opt.default
    if opt.spec.show is not None:
        return opt.spec.show(value)
    if value is None or isinstance(value, bool):
        return None
    return f"{value:g}" if isinstance(value, float) else str(value)


def _click_type(opt: CliOption) -> click.ParamType:
    spec = opt.spec
    if spec.choices:
        return click.Choice(spec.choices)
    if spec.directory:
        return click.Path(exists=True, file_okay=False)
    if opt.type in (int, float) and (spec.min is not None or spec.max is not None):
        kind = click.IntRange if opt.type is int else click.FloatRange
        return kind(min=spec.min, max=spec.max, **({"min_open": True} if spec.min_open else {}))
    return {int: click.INT, float: click.FLOAT}.get(opt.type, click.STRING)


def _option(opt: CliOption, help: str, default_text: str | None) -> click.Option:
    if opt.type is bool:
        return _Option([opt.flag, opt.name], is_flag=True, default=False, help=help)
    return _Option([opt.flag, opt.name], type=_click_type(opt), default=None, help=help,
                   default_text=default_text)


def _defaults_by_family(per_family: dict[str, CliOption]) -> str | None:
    """One default, or each family's: ``hyperprior, channel-context: 20000; vq: 3000``."""
    shown = {family: _shown(opt) for family, opt in per_family.items()}
    if len(set(shown.values())) == 1:
        return next(iter(shown.values()))
    grouped: dict[str | None, list[str]] = {}
    for family, text in shown.items():
        grouped.setdefault(text, []).append(family)
    return "; ".join(f"{', '.join(families)}: {text or 'none'}"
                     for text, families in grouped.items())


# -- the options every family has, and those of the command ---------------------------

def _common_params() -> tuple[click.Argument, click.Option]:
    data = click.Argument(["data"], nargs=-1, required=True, type=click.Path(exists=True))
    summaries = "; ".join(f"{name}: {entry.summary}" for name, entry in TRAINERS.items())
    family = click.Option(
        ["--family"], type=click.Choice(list(TRAINERS)), default=DEFAULT_FAMILY,
        show_default=True,
        help=f"Model family. {summaries}. Each takes its own options, with its own "
             "defaults: aec train --family FAMILY --help lists them.")
    return data, family


def _after_params(nproc: bool, families: str = "") -> list[click.Option]:
    """--export, --export-dir and, with ``nproc``, --nproc (``families``: the families
    that take it, where not all do)."""
    params = [
        click.Option(["--export", "export_name"], default=None,
                     help="After training, export weights under this model name."),
        click.Option(["--export-dir"], type=click.Path(file_okay=False), default="models",
                     show_default=True,
                     help="Where --export writes; put the folder in $AEC_MODEL_PATH to use it."),
    ]
    if nproc:
        params.append(click.Option(
            ["--nproc"], type=click.IntRange(min=1), default=1, show_default=True,
            help=f"{families}Data-parallel processes (runs torchrun; --batch-size is per "
                 "process)."))
    return params


def _only(families: list[str]) -> str:
    """The prefix of an option's help in the list of every family's options."""
    return "" if len(families) == len(TRAINERS) else f"({', '.join(families)}) "


# -- the command ----------------------------------------------------------------------

class TrainCommand(click.Command):
    """``aec train``: the union of the families' options, each family checked for its
    own; help per family with ``--family F --help``."""

    def __init__(self) -> None:
        self.options = {name: {o.name: o for o in cli_options(entry.options)}
                        for name, entry in TRAINERS.items()}
        self.takers: dict[str, list[str]] = {}  # option name -> the families taking it
        for family, options in self.options.items():
            for name in options:
                self.takers.setdefault(name, []).append(family)
        self.takers["nproc"] = [name for name, entry in TRAINERS.items()
                                if entry.options.data_parallel]
        data, family = _common_params()
        union = []
        for name, families in self.takers.items():
            if name == "nproc":
                continue
            first = self.options[families[0]][name]
            union.append(_option(first, _only(families) + first.spec.help, _defaults_by_family(
                {f: self.options[f][name] for f in families})))
        self.family_params = {
            name: [data, family,
                   *(_option(o, o.spec.help, _shown(o)) for o in options.values()),
                   *_after_params(name in self.takers["nproc"])]
            for name, options in self.options.items()}
        super().__init__(
            "train", callback=self.train, short_help="Train a model on folders of images.",
            params=[data, family, *union,
                    *_after_params(bool(self.takers["nproc"]), _only(self.takers["nproc"]))],
            help="Train a model on folders of images (resumes from OUT/checkpoint.pt if "
                 "present).\n\nOptions are those of the --family's trainer, with its "
                 "defaults; 'aec train --family FAMILY --help' lists one family's.")

    def flag(self, name: str) -> str:
        return self.options[self.takers[name][0]][name].flag if name != "nproc" else "--nproc"

    def refusal(self, names: list[str], family: str) -> str:
        """``--seconds and --compile are for the hyperprior and channel-context families,
        not vq``."""
        by_takers: dict[tuple[str, ...], list[str]] = {}
        for name in names:
            by_takers.setdefault(tuple(self.takers[name]), []).append(self.flag(name))
        return "; ".join(
            f"{' and '.join(flags)} {'is' if len(flags) == 1 else 'are'} for the "
            f"{' and '.join(takers)} famil{'y' if len(takers) == 1 else 'ies'}, not {family}"
            for takers, flags in by_takers.items())

    # -- help ---------------------------------------------------------------------------

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[_FAMILY_META] = _family_named(args)
        return super().parse_args(ctx, args)

    def format_help_text(self, ctx: click.Context, formatter) -> None:
        family = ctx.meta.get(_FAMILY_META)
        if family is None:
            return super().format_help_text(ctx, formatter)
        formatter.write_paragraph()
        with formatter.indentation():
            formatter.write_text(
                f"Train a {family} model ({TRAINERS[family].summary}) on folders of images "
                "(resumes from OUT/checkpoint.pt if present). The options below are this "
                "family's, with its defaults; 'aec train --help' lists every family's.")

    def format_options(self, ctx: click.Context, formatter) -> None:
        family = ctx.meta.get(_FAMILY_META)
        params = self.params if family is None else self.family_params[family]
        records = [record for param in [*params, self.get_help_option(ctx)]
                   if param is not None and (record := param.get_help_record(ctx))]
        with formatter.section("Options"):
            formatter.write_dl(records)

    # -- running ------------------------------------------------------------------------

    def train(self, data: tuple[str, ...], family: str, export_name: str | None,
              export_dir: str, nproc: int, **values: Any) -> None:
        ctx = click.get_current_context()
        given = {name: value for name, value in values.items() if _given(ctx, name)}
        named = [*given, *(["nproc"] if _given(ctx, "nproc") else [])]
        refused = [name for name in named if family not in self.takers[name]]
        if refused:
            raise click.UsageError(self.refusal(refused, family))  # exit 2
        if nproc > 1 and "WORLD_SIZE" not in os.environ:
            _torchrun(ctx, nproc)
            return
        entry = TRAINERS[family]
        for name, value in given.items():
            if self.options[family][name].type is list:
                try:
                    given[name] = [float(v) for v in value.split(",")]
                except ValueError as exc:
                    raise AecError(f"{self.options[family][name].flag} {value}: {exc}") from None
        try:
            opts = make_options(entry.options, list(data), given)
        except ValueError as exc:
            raise AecError(str(exc)) from None
        module = entry.load()
        try:
            module.train(opts, log=lambda message: click.echo(message, err=True))
        except ValueError as exc:
            raise AecError(str(exc)) from None
        if export_name and int(os.environ.get("RANK", "0")) == 0:  # one writer under torchrun
            say(f"exported {module.export(opts.out, export_name, export_dir)}")


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)


def _family_named(args: list[str]) -> str | None:
    """The family ``--family`` names in ``args`` (None: none, or not a family)."""
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--family" and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--family="):
            value = arg.split("=", 1)[1]
        else:
            continue
        return value if value in TRAINERS else None
    return None


def _torchrun(ctx: click.Context, nproc: int) -> None:
    import subprocess

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", "-m", "neuralcodec", "train",
           *_command_line(ctx, skip={"nproc"})]
    code = subprocess.call(cmd)
    if code:
        raise AecError(f"training with {nproc} processes failed (exit code {code})")


def _command_line(ctx: click.Context, skip: set[str]) -> list[str]:
    """The command's arguments again, as given (defaults left out), minus ``skip``."""
    positional, options = [], []
    for param in ctx.command.params:
        value = ctx.params[param.name]
        if param.name in skip or not _given(ctx, param.name):
            continue
        if isinstance(param, click.Argument):
            positional += [str(v) for v in value]
        elif getattr(param, "is_flag", False):
            options += [param.opts[0]] if value else []
        else:
            options += [param.opts[0], str(value)]
    return positional + options


train = TrainCommand()
