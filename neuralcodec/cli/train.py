"""The train command: a thin layer over :mod:`neuralcodec.training`."""

from __future__ import annotations

import os
import sys

import click

from ..errors import AecError
from .common import device_option_with


@click.command()
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", default="runs/default", show_default=True, help="Run folder.")
@click.option("--eval-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Evaluation images (e.g. Kodak), logged every --eval-every steps.")
@click.option("--steps", type=click.IntRange(min=1), default=20000, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--patch", type=click.IntRange(min=64), default=128, show_default=True)
@click.option("--lr", type=float, default=3e-4, show_default=True)
@click.option("--lr-drop-at", type=click.FloatRange(0, 1), default=0.85, show_default=True,
              help="Fraction of --steps after which the learning rate is divided by 10.")
@click.option("--eval-every", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--eval-images", type=click.IntRange(min=1), default=6, show_default=True,
              help="How many of --eval-dir's images (sorted) each evaluation uses.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--N", "n", type=click.IntRange(min=8), default=128, show_default=True)
@click.option("--M", "m", type=click.IntRange(min=8), default=192, show_default=True)
@click.option("--lambdas", default=None,
              help="Rate levels, comma-separated lambdas "
                   "[default: 10 from 0.00033 to 0.6, as shipped]. Given for a run that "
                   "already has a checkpoint with other levels, the "
                   "checkpoint's gains are first moved to these levels.")
@device_option_with("Where training runs (auto: CUDA when available).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--export", "export_name", default=None,
              help="After training, export weights under this model name.")
@click.option("--export-dir", type=click.Path(file_okay=False), default="models",
              show_default=True,
              help="Where --export writes; put the folder in $AEC_MODEL_PATH to use it.")
@click.option("--family", type=click.Choice(["hyperprior", "channel-context", "vq"]),
              default="hyperprior", show_default=True,
              help="Model family. channel-context (channel groups + checkerboard + LRP) "
                   "starts from the transforms of --init (default aec-hp-ckbd) with fresh "
                   "context networks. vq trains a VQ-VAE on the frozen analysis transform "
                   "of --init (default aec-hp-ckbd); it uses --steps, --batch-size, "
                   "--patch, --eval-dir, --seed, --device and --export.")
@click.option("--init", default=None,
              help="Start a new run from these weights (model name or .safetensors file).")
@click.option("--freeze-transforms", type=click.IntRange(min=0), default=0,
              show_default=True,
              help="channel-context: steps at the start of the run during which the "
                   "copied transforms and gains stay frozen (only the new networks train).")
@click.option("--channel-order", type=click.Choice(["rate", "stored"]), default="rate",
              show_default=True,
              help="channel-context, warm start from a hyperprior: put the latent channels "
                   "it spends most bits on first (in the first groups, which the others are "
                   "conditioned on), or keep its stored order.")
@click.option("--warmup", type=click.IntRange(min=0), default=0, show_default=True,
              help="Steps of linear learning-rate warm-up from the run's first step.")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop after this much wall time (checkpointed); --lr-drop-at is then a "
                   "fraction of it.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto",
              show_default=True,
              help="bf16: the transforms' bodies under bfloat16 autocast; auto: bf16 where "
                   "the device computes it natively (AVX-512 BF16, AMX, CUDA), else fp32.")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the training step.")
@click.option("--channels-last", is_flag=True, help="channels_last memory format.")
@click.option("--crops-on-device", is_flag=True,
              help="Keep the training images on the device and crop them there.")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="Data-parallel processes (runs torchrun; --batch-size is per process).")
@click.pass_context
def train(ctx, data, out, eval_dir, steps, batch_size, patch, lr, lr_drop_at, eval_every,
          eval_images, checkpoint_every, n, m, lambdas, device, seed, export_name,
          export_dir, family, init, freeze_transforms, channel_order, warmup, seconds,
          precision, compile_, channels_last, crops_on_device, nproc) -> None:
    """Train a model on folders of images (resumes from OUT/checkpoint.pt if present)."""
    log = lambda message: click.echo(message, err=True)  # noqa: E731
    if family == "vq":
        if nproc > 1:
            raise click.UsageError("--nproc is for the hyperprior family")
        _train_vq(data, out, eval_dir, steps, batch_size, patch, device, seed, init,
                  export_name, export_dir, log)
        return
    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        import subprocess

        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", "-m", "neuralcodec", "train",
               *_command_line(ctx, skip={"nproc"})]
        code = subprocess.call(cmd)
        if code:
            raise AecError(f"training with {nproc} processes failed (exit code {code})")
        return
    if family == "channel-context":
        from ..families.channel_context.model import ChannelConfig as ModelConfig
        from ..training.channel_context import ChannelTrainOptions as TrainOptions
        from ..training.channel_context import export
        from ..training.channel_context import train as run_training

        extra = {"freeze_transforms": freeze_transforms, "init": init or "aec-hp-ckbd",
                 "channel_order": channel_order}
        config = {k: v for k, v in ModelConfig().to_dict().items() if k != "groups"}
        config.update(N=n, M=m)
    else:
        if freeze_transforms or ctx.get_parameter_source("channel_order").name != "DEFAULT":
            raise click.UsageError("--freeze-transforms and --channel-order are for the "
                                   "channel-context family")
        from ..families.hyperprior.architecture import ModelConfig
        from ..training.hyperprior import TrainOptions, export
        from ..training.hyperprior import train as run_training

        extra = {"init": init}
        config = {**ModelConfig().to_dict(), "N": n, "M": m}
    if lambdas is not None:
        try:
            config["lambdas"] = [float(v) for v in lambdas.split(",")]
            ModelConfig.from_dict(config)
        except ValueError as exc:
            raise AecError(f"--lambdas {lambdas}: {exc}") from None
    opts = TrainOptions(
        data=list(data), out=out, eval_dir=eval_dir, steps=steps, batch_size=batch_size,
        patch=patch, lr=lr, lr_drop_at=lr_drop_at, eval_every=eval_every, eval_images=eval_images,
        checkpoint_every=checkpoint_every, device=device, seed=seed, config=config,
        relevel=lambdas is not None, warmup=warmup, seconds=seconds,
        precision=precision, compile=compile_, channels_last=channels_last,
        crops_on_device=crops_on_device, **extra,
    )
    try:
        run_training(opts, log=log)
    except ValueError as exc:
        raise AecError(str(exc)) from None
    if export_name and int(os.environ.get("RANK", "0")) == 0:  # one writer under torchrun
        path = export(out, export_name, export_dir)
        click.echo(f"exported {path}")


def _train_vq(data, out, eval_dir, steps, batch_size, patch, device, seed, init, export_name,
              export_dir, log) -> None:
    from ..training.vq import VQTrainOptions, export
    from ..training.vq import train as run_training

    opts = VQTrainOptions(data=list(data), out=out, eval_dir=eval_dir, steps=steps,
                          batch_size=batch_size, patch=patch, device=device, seed=seed,
                          init=init or VQTrainOptions.init)
    run_training(opts, log=log)
    if export_name:
        click.echo(f"exported {export(out, export_name, export_dir)}")


def _command_line(ctx: click.Context, skip: set[str]) -> list[str]:
    """The command's arguments again, as given (defaults left out), minus ``skip``."""
    positional, options = [], []
    for param in ctx.command.params:
        value = ctx.params[param.name]
        if param.name in skip:
            continue
        if isinstance(param, click.Argument):
            positional += [str(v) for v in value]
        elif getattr(param, "is_flag", False):
            options += [param.opts[0]] if value else []
        elif value is not None and value != param.default:
            options += [param.opts[0], str(value)]
    return positional + options
