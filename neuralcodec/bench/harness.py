"""``aec bench``: rate-distortion and speed of aec models against classical codecs.

For every image of a folder and every codec setting: bits per pixel from the real encoded
bytes, RGB PSNR, MS-SSIM (pytorch-msssim, on the GPU when the run uses one) and encode
and decode seconds. Neural models run in this process on the chosen device (same-sized
images batched through the analysis transform on CUDA); the Pillow codecs run in a pool
of worker processes. Every finished row (image, codec, setting) is appended to a JSON-lines
cache (``OUT/cache/rows.jsonl``, or ``--cache DIR``), keyed by the image's content, the
codec's configuration and library versions and the setting, so a rerun codes only what is
missing: an interrupted run resumes where it stopped, and a run with more settings reuses
the rows it has. Aggregation, BD-rates and the output files are in
:mod:`neuralcodec.bench.report`.

>>> from neuralcodec.bench.harness import BenchOptions, run_bench
>>> result = run_bench(BenchOptions(folder="photos", out="bench-out", quick=True))
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import importlib.util
import json
import multiprocessing
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
from PIL import Image, features

from .. import metrics
from ..codec.options import RESIDUAL_BASE_MODELS
from ..errors import AecError, install_command
from ..io.images import image_suffixes, native_image
from ..version import __version__
from .classical import (
    CLASSICAL_FAMILIES,
    DEFAULT_CLASSICAL,
    FAMILY_GROUPS,
    MAX_POOL_WORKERS,
    ClassicalCodec,
    Coded,
    check_bound,
    classical_codecs,
    library_versions,
    run_classical,
)

if TYPE_CHECKING:
    from ..codec import Codec

NEURAL_FAMILY = "aec"
ALL_FAMILIES = (NEURAL_FAMILY, *CLASSICAL_FAMILIES)
DEFAULT_FAMILIES = (NEURAL_FAMILY, *DEFAULT_CLASSICAL)
RESIDUAL_LABEL = "{} residual"  # aec's rows in the lossless table (lossless=/max_error=)
AEC_QUALITIES = (0, 20, 40, 60, 80, 100)  # the curve is smooth: PCHIP needs no more
AEC_QUICK_QUALITIES = (0, 50, 100)
QUICK_IMAGES = 2
# MS-SSIM's five scales with an 11-pixel window need the short side above (11 - 1) * 2**4.
MSSSIM_MIN_SIDE = 161
CUDA_ANALYSIS_BATCH = 8
CACHE_NAME = "cache/rows.jsonl"
CACHE_FILE = "rows.jsonl"  # its name in a --cache folder
SLOW_ROW_S = 5.0  # an aec encode at least this long gets its own progress line


@dataclass
class Row:
    """One image through one codec at one setting."""

    image: str
    codec: str  # curve label: a model name ("aec-hp-ckbd") or e.g. "jpeg-444"
    setting: float  # the swept knob: quality, or target bpp for jpeg2000
    width: int
    height: int
    bytes: int
    bpp: float
    psnr: float
    msssim: float | None  # None where the image is too small for MS-SSIM
    encode_s: float
    decode_s: float
    max_error: int | None = None  # the largest sample error (the lossless table's rows)


@dataclass
class BenchOptions:
    folder: str | Path
    out: str | Path
    # families (aec, jpeg, webp, avif, jxl, jpeg2000, jxl-distance, png, webp-lossless,
    # jxl-lossless, jpegls) or groups of them ("lossless")
    codecs: Sequence[str] = DEFAULT_FAMILIES
    models: Sequence[str] | None = None  # None: every installed model; "NAME@v1": format 1
    efforts: Sequence[int] = (1,)  # encoder effort levels: one curve per model and level
    # Error bounds K (0: lossless): JPEG-LS's NEAR values, and, when given, aec's rows
    # coded with lossless=True / max_error=K (None: JPEG-LS at 0, 1, 2, 4; aec none).
    max_errors: Sequence[int] | None = None
    cache: str | Path | None = None  # the row cache's folder (default: OUT/cache)
    quick: bool = False  # first QUICK_IMAGES images, a few settings per codec, 1 speed run
    device: str = "auto"  # where neural transforms and MS-SSIM run
    workers: int | None = None  # Pillow processes (default: CPUs, at most MAX_POOL_WORKERS)
    limit: int | None = None  # only the first N images
    speed: bool = True  # also write the per-stage speed report of the first model
    analysis_batch: int | None = None  # same-sized images per g_a call (default: 8 on CUDA)
    note: str = ""  # free text stored with the results (e.g. "shared 2-core machine")
    progress: bool = True
    log: Callable[[str], None] | None = field(default=None, repr=False)


@dataclass
class BenchResult:
    rows: list[Row]
    report: dict[str, Any]  # what results.json holds besides the rows
    out: Path


# -- inputs -----------------------------------------------------------------------------


def list_images(folder: Path, limit: int | None) -> list[Path]:
    if not folder.is_dir():
        raise AecError(f"{folder}: not a folder of images")
    suffixes = image_suffixes()  # what `aec encode DIR` codes
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes)
    if limit is not None:
        paths = paths[:limit]
    if not paths:
        raise AecError(f"{folder}: no images (no file of a format Pillow can open)")
    return paths


def load_rgb(path: Path) -> np.ndarray:
    """An image's RGB pixels after the conversions ``aec encode`` makes (16-bit samples
    scaled, CMYK through its profile), so that every codec is measured on the image aec
    codes. Quietly: the bench keeps no metadata, and its notes would be about that."""
    try:
        with Image.open(path) as im:
            native, _ = native_image(im, im.info.get("icc_profile"), lambda *note: None)
            return np.asarray(native.convert("RGB"))
    except (OSError, ValueError) as exc:
        raise AecError(f"{path}: cannot read image ({exc})") from None


@dataclass(frozen=True)
class NeuralSpec:
    """An aec model to sweep; ``format_version`` 1 selects the float64 parameter path;
    ``effort`` is the encoder effort (one curve per level)."""

    model: str
    format_version: int | None = None
    effort: int = 1

    @property
    def label(self) -> str:
        label = self.model
        if self.format_version is not None:
            label += f"@v{self.format_version}"
        return label if self.effort == 1 else f"{label} effort {self.effort}"

    @classmethod
    def parse(cls, text: str) -> NeuralSpec:
        name, _, version = text.partition("@v")
        if not name or (version and not version.isdigit()):
            raise AecError(f"bad model {text!r}: expected NAME or NAME@vN")
        return cls(name, int(version) if version else None)


def neural_specs(models: Sequence[str] | None, efforts: Sequence[int] = (1,)
                 ) -> list[NeuralSpec]:
    """Every model (default: every installed one whose encodes are not per-image fits,
    which take minutes an image: those only when named) at every effort level it offers
    (a level beyond a model's top is skipped; an effort no model offers is an error)."""
    from ..families.base import get_family
    from ..families.zoo import available_models, find_model

    if models is None:
        names = [m.name for m in available_models()
                 if not getattr(get_family(m.family), "fits_each_image", False)]
        if not names:
            raise AecError("no aec models installed (see 'aec models')")
        specs = [NeuralSpec(n) for n in names]
    else:
        specs = [NeuralSpec.parse(m) for m in models]
    out = []
    for spec in specs:
        family = get_family(find_model(spec.model).family)
        top = family.max_effort if family else 1
        out += [NeuralSpec(spec.model, spec.format_version, e) for e in efforts if e <= top]
    if not out or any(e < 1 for e in efforts):
        raise AecError(f"effort {','.join(map(str, efforts))}: no model offers it")
    return out


# -- quality --------------------------------------------------------------------------


class QualityMeter:
    """PSNR (numpy, exact) and MS-SSIM (pytorch-msssim on ``device``), batched per image."""

    def __init__(self, device: torch.device, batch: int = 8):
        from pytorch_msssim import ms_ssim

        self.ms_ssim = ms_ssim
        self.device = device
        self.batch = batch

    def measure(self, original: np.ndarray, decoded: Sequence[np.ndarray]
                ) -> list[tuple[float, float | None]]:
        psnrs = [metrics.psnr(original, d) for d in decoded]
        if min(original.shape[:2]) < MSSSIM_MIN_SIDE:
            return [(p, None) for p in psnrs]
        reference = _to_tensor(original[None], self.device)
        scores: list[float] = []
        with torch.no_grad():
            for i in range(0, len(decoded), self.batch):
                test = _to_tensor(np.stack(decoded[i:i + self.batch]), self.device)
                values = self.ms_ssim(reference.expand_as(test), test, data_range=255,
                                      size_average=False)
                scores += values.double().cpu().tolist()
        return list(zip(psnrs, scores, strict=True))


def _to_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    # A copy: decoded arrays may be read-only views of Pillow's buffers.
    return torch.tensor(images, device=device).permute(0, 3, 1, 2).float()


# -- the result cache ---------------------------------------------------------------------


class RowCache:
    """Rows keyed by (codec configuration, image content, setting), one JSON line each.

    The key holds a digest of the image bytes and the codec's configuration (model
    fingerprint, or Pillow options and library versions), so changed inputs are re-run
    instead of being served stale results."""

    def __init__(self, path: Path):
        self.path = path
        self.rows: dict[str, dict] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                    self.rows[entry["key"]] = entry["row"]
                except (ValueError, KeyError):
                    continue  # a line cut short by an interruption
        path.parent.mkdir(parents=True, exist_ok=True)
        ignore = path.parent / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# written by aec bench: the resume cache is not a result\n*\n")

    @staticmethod
    def key(config: str, image_digest: str, setting: float) -> str:
        return f"{config}|{image_digest}|{setting!r}"

    def missing(self, config: str, image_digest: str, settings: Sequence[float]
                ) -> list[float]:
        """The settings of this image and codec that have no row yet."""
        return [s for s in settings if self.key(config, image_digest, s) not in self.rows]

    def get(self, key: str) -> Row | None:
        row = self.rows.get(key)
        return Row(**row) if row is not None else None

    def add(self, entries: Iterable[tuple[str, Row]]) -> None:
        lines = []
        for key, row in entries:
            self.rows[key] = asdict(row)
            lines.append(json.dumps({"key": key, "row": asdict(row)}, allow_nan=True))
        with self.path.open("a") as f:  # whole lines, flushed per task: safe to interrupt
            f.write("".join(line + "\n" for line in lines))


# -- progress ---------------------------------------------------------------------------


class ProgressOptions(NamedTuple):
    enabled: bool
    log: Callable[[str], None] | None


class Progress:
    """A progress bar on a terminal; otherwise a log line every 10 % of the work."""

    def __init__(self, total: int, label: str, enabled: bool, log: Callable[[str], None] | None):
        self.total, self.done, self.label, self.log = total, 0, label, log if enabled else None
        self.bar = None
        self.next_report = 0.1
        if enabled and total and sys.stderr.isatty():
            import click

            self.bar = click.progressbar(length=total, label=label, file=sys.stderr)
            self.bar.__enter__()

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.log and self.total and self.done / self.total >= self.next_report:
            self.log(f"{self.label}: {self.done}/{self.total}")
            self.next_report = (int(self.done / self.total * 10) + 1) / 10

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


# -- the sweeps -------------------------------------------------------------------------


@dataclass
class SourceImage:
    path: Path
    pixels: np.ndarray  # RGB uint8 (H, W, 3)
    digest: str

    @property
    def name(self) -> str:
        return self.path.name


def _row(image: SourceImage, label: str, coded: Coded, quality: tuple) -> Row:
    h, w = image.pixels.shape[:2]
    return Row(image.name, label, coded.setting, w, h, coded.num_bytes,
               metrics.bpp(coded.num_bytes, w, h), quality[0], quality[1], coded.encode_s,
               coded.decode_s, coded.max_error)


def _groups(images: Sequence[SourceImage], batch: int) -> Iterator[list[SourceImage]]:
    """Images in groups of at most ``batch`` with equal sizes (one tensor per group)."""
    by_shape: dict[tuple, list[SourceImage]] = {}
    for im in images:
        by_shape.setdefault(im.pixels.shape, []).append(im)
    for same in by_shape.values():
        for i in range(0, len(same), batch):
            yield same[i:i + batch]


def _neural_config(spec: NeuralSpec) -> str:
    """Cache identity of a model's curve: its weights and the container format it writes."""
    from ..families.zoo import find_model
    from ..format.container import VERSION

    version = spec.format_version or VERSION
    info = find_model(spec.model)
    config = f"{spec.model}|v{version}|{info.fingerprint.hex()}"
    if spec.effort > 1:  # the level's meaning (its refinement iterations) is part of it
        from ..families.base import get_family

        family = get_family(info.family)
        assert family is not None
        config += f"|e{spec.effort}x{family.efforts[spec.effort]}{family.effort_method}"
    return config


def _one_tile(codec: Codec, image: SourceImage) -> bool:
    """Whether the codec codes this image as one piece (its analysis output is then one
    tensor that a batch can fill in)."""
    h, w = image.pixels.shape[:2]
    return len(codec.grid(w, h)) == 1


def _analyse_batch(codec: Codec, group: Sequence[SourceImage]) -> list:
    """Prepare a group of same-sized one-tile images and analyse them in one batched
    call; returns (prepared, seconds per image) pairs."""
    from .stage_timing import synchronize

    t0 = time.perf_counter()
    prepared = [codec.prepare(Image.fromarray(im.pixels)) for im in group]
    codec.analyse_together(prepared)
    synchronize(codec.device)
    seconds = (time.perf_counter() - t0) / len(group)
    return [(prep, seconds) for prep in prepared]


def sweep_neural(spec: NeuralSpec, images: Sequence[SourceImage], settings: Sequence[float],
                 device: str, meter: QualityMeter, cache: RowCache, show: ProgressOptions,
                 batch: int | None = None) -> list[Row]:
    """One model over its quality range. The analysis transform does not depend on the
    quality, so it runs once per image and its time is added to every setting's encode
    time, which is thus that of a whole encode (prepare + analysis + entropy coding +
    container). One-tile images of equal size share one batched analysis call (on CUDA by
    default); for the others the codec caches it, and its time is the first encode's
    excess over a repeat of that encode."""
    from ..codec import Codec

    options = {} if spec.format_version is None else {"format_version": spec.format_version}
    codec = Codec(model=spec.model, device=device, **options).load()
    config = _neural_config(spec)
    todo = [im for im in images if cache.missing(config, im.digest, settings)]
    progress = Progress(len(todo), spec.label, *show)
    if todo:  # one-time costs (allocator, kernel selection) must not land on image 1
        warm = Image.fromarray(todo[0].pixels)
        codec.decode(codec.encode(warm, settings[len(settings) // 2]))  # effort 1: warm-up
    if batch is None:  # batching pays on a GPU; on a CPU it only costs memory
        batch = CUDA_ANALYSIS_BATCH if codec.device.startswith("cuda") else 1

    def jobs() -> Iterator[tuple[SourceImage, Any, float | None]]:
        for group in _groups([im for im in todo if _one_tile(codec, im)], batch):
            for im, (prep, s) in zip(group, _analyse_batch(codec, group), strict=True):
                yield im, prep, s  # one group's analysis outputs in memory at a time
        yield from ((im, None, None) for im in todo if not _one_tile(codec, im))

    rows: list[Row] = []
    for im, prep, analysis_s in jobs():
        if prep is None:
            t0 = time.perf_counter()
            prep = codec.prepare(Image.fromarray(im.pixels))
            codec.encode_prepared(prep, settings[0])  # analysis (cached) + coding
            t1 = time.perf_counter()
            codec.encode_prepared(prep, settings[0])  # coding only (effort 1: the same
            # analysis time at every effort)
            analysis_s = max(0.0, 2 * t1 - t0 - time.perf_counter())
        for setting in cache.missing(config, im.digest, settings):
            t0 = time.perf_counter()
            data = codec.encode_prepared(prep, setting, effort=spec.effort)
            t1 = time.perf_counter()
            decoded = np.asarray(codec.decode(data).convert("RGB"))
            coded = Coded(setting, len(data), analysis_s + t1 - t0, time.perf_counter() - t1,
                          decoded)
            # Each row is cached once coded: a slow encoder (high effort, an overfitted
            # model) loses at most one encode to an interruption, and says where it is.
            rows += _record(im, spec.label, config, [coded], meter, cache)
            if coded.encode_s >= SLOW_ROW_S and show.enabled and show.log:
                show.log(_row_line(rows[-1], "q"))
        progress.advance()
    progress.close()
    return rows


def _residual_config(spec: NeuralSpec) -> str:
    """Cache identity of a model's rows with the residual layer: the model's, aec's version
    (the encoder picks the base quality) and the residual model's fingerprint (an error
    here, before any work, if that model is not installed)."""
    from ..codec.residual_layer import residual_model

    return f"{_neural_config(spec)}|residual|{__version__}|{residual_model().fingerprint}"


def _row_line(row: Row, knob: str = "K") -> str:
    """The progress line of one slow encode (the lossless table's rows, slow aec rows)."""
    return (f"{row.codec} {row.image} {knob}={row.setting:g}: {row.bpp:.3f} bpp, "
            f"encode {row.encode_s:.2f} s, decode {row.decode_s:.2f} s")


def sweep_residual(spec: NeuralSpec, images: Sequence[SourceImage], max_errors: Sequence[int],
                   device: str, meter: QualityMeter, cache: RowCache,
                   log: Callable[[str], None]) -> list[Row]:
    """A model's rows of the lossless table: every image coded with ``lossless=True`` (K =
    0) or ``max_error=K``, decoded back and checked against K; each row is cached as soon
    as it is coded (these encodes are slow) and reported in a line."""
    from ..codec import Codec

    options = {} if spec.format_version is None else {"format_version": spec.format_version}
    codec = Codec(model=spec.model, device=device, **options).load()
    config, label = _residual_config(spec), RESIDUAL_LABEL.format(spec.label)
    rows: list[Row] = []
    for im in images:
        for k in cache.missing(config, im.digest, max_errors):
            bound: dict[str, Any] = {"lossless": True} if k == 0 else {"max_error": int(k)}
            t0 = time.perf_counter()
            data = codec.encode(Image.fromarray(im.pixels), effort=spec.effort, **bound)
            t1 = time.perf_counter()
            decoded = np.asarray(codec.decode(data).convert("RGB"))
            t2 = time.perf_counter()
            error = check_bound(label, im.pixels, decoded, int(k))
            coded = Coded(k, len(data), t1 - t0, t2 - t1, decoded, error)
            rows += _record(im, label, config, [coded], meter, cache)
            log(_row_line(rows[-1]))
    return rows


def _record(image: SourceImage, label: str, config: str, coded: Sequence[Coded],
            meter: QualityMeter, cache: RowCache, qualities: list[tuple] | None = None
            ) -> list[Row]:
    """Measure (unless a worker did) and cache one image's rows of one codec."""
    if qualities is None:
        qualities = meter.measure(image.pixels, [c.decoded for c in coded])
    entries = [(cache.key(config, image.digest, c.setting), _row(image, label, c, q))
               for c, q in zip(coded, qualities, strict=True)]
    cache.add(entries)
    return [row for _, row in entries]


def _classical_task(codec: ClassicalCodec, pixels: np.ndarray, settings: Sequence[float],
                    measure: bool) -> tuple[list[Coded], list[tuple] | None]:
    """A worker's job: code one image at every setting and, if asked, measure quality
    here instead of sending the decoded pixels back."""
    coded = run_classical(codec, pixels, settings)
    if not measure:
        return coded, None
    torch.set_num_threads(1)  # one core per worker: the pool is the parallelism
    qualities = QualityMeter(torch.device("cpu")).measure(pixels, [c.decoded for c in coded])
    for c in coded:
        c.decoded = np.empty((0, 0, 3), np.uint8)  # not needed any more: do not ship it
    return coded, qualities


def _classical_config(codec: ClassicalCodec) -> str:
    """Cache identity of a classical curve: its options and the codec libraries' versions
    (each row's key adds its own setting, so a longer sweep reuses the shorter one's)."""
    versions = {k: features.version(k) for k in ("jpg", "webp", "avif", "jpg_2000")}
    identity = [codec.label, codec.options, codec.knob_name, versions,
                _version("pillow-jxl-plugin")]
    # Added only where they matter, so that the other curves keep their cached rows.
    if codec.library != "pillow":
        identity += [codec.library, library_versions()]
    elif codec.pillow_format == "PNG":
        identity.append(features.version("zlib"))
    description = json.dumps(identity, sort_keys=True, default=str)
    return f"{codec.label}|{hashlib.sha1(description.encode()).hexdigest()[:12]}"


def sweep_classical(codecs: Sequence[ClassicalCodec], images: Sequence[SourceImage],
                    quick: bool, workers: int, meter: QualityMeter, cache: RowCache,
                    show: ProgressOptions, max_errors: Sequence[int] | None = None
                    ) -> list[Row]:
    """Every classical codec over its sweep (only the settings not cached yet), one (image,
    codec) task per worker call; the slow lossless codecs report each row in a line."""
    tasks = []
    for codec in codecs:
        config = _classical_config(codec)
        for im in images:
            settings = cache.missing(config, im.digest, codec.sweep(quick, max_errors))
            if settings:
                tasks.append((codec, config, im, settings))
    progress = Progress(len(tasks), "classical codecs", *show)
    rows: list[Row] = []

    def record(codec: ClassicalCodec, config: str, im: SourceImage, coded: list[Coded],
               qualities: list[tuple] | None = None) -> None:
        new = _record(im, codec.label, config, coded, meter, cache, qualities)
        if codec.bounded and show.enabled and show.log:
            for row in new:
                show.log(_row_line(row))
        rows.extend(new)
        progress.advance()

    if workers <= 1:  # in-process: simpler to debug, and no start-up cost for tiny runs
        for codec, config, im, settings in tasks:
            record(codec, config, im, run_classical(codec, im.pixels, settings))
        progress.close()
        return rows
    # On the CPU the workers also measure quality (MS-SSIM costs more than most encoders);
    # with a GPU this process does, batched on the device.
    in_worker = meter.device.type == "cpu"
    # fork spares each worker re-importing torch. Workers never touch CUDA, and use torch
    # only single-threaded on the CPU (as DataLoader workers do), which is fork-safe.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context(method)) as pool:
        futures = {pool.submit(_classical_task, codec, im.pixels, settings, in_worker):
                   (codec, config, im) for codec, config, im, settings in tasks}
        try:
            for future in concurrent.futures.as_completed(futures):
                codec, config, im = futures[future]
                coded, qualities = future.result()
                record(codec, config, im, coded, qualities)
        except BaseException:  # a broken bound or Ctrl-C: do not wait for the queue
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    progress.close()
    return rows


# -- the run ----------------------------------------------------------------------------


def _version(package: str) -> str | None:
    if package == "aec":  # this code's own, installed or not ("aec" on the package
        return __version__  # index is another project)
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def source_revision(root: Path | None = None) -> str | None:
    """The git commit of this aec checkout ("+changes" if its package files differ from
    it), or None outside a checkout: which code produced the results."""
    import subprocess

    # the checkout holding neuralcodec/bench/harness.py
    root = (root or Path(__file__).parent.parent.parent).resolve()
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, text=True,
                             capture_output=True, check=True).stdout.strip()
        # An installed copy can sit inside some other repository (pyenv is one): not ours.
        if Path(top).resolve() != root:
            return None
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True,
                                capture_output=True, check=True).stdout.strip()
        changed = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "neuralcodec"],
                                 cwd=root, capture_output=True).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+changes" if changed else "")


def environment(device: torch.device, workers: int, note: str) -> dict[str, Any]:
    from ..cpu import cpu_model
    from .stage_timing import device_name

    packages = ("aec", "torch", "compressai", "constriction", "pillow", "pillow-jxl-plugin",
                "pytorch-msssim", "numpy", "scipy")
    return {
        "device": str(device),
        "device_name": device_name(device),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch_cuda_build": torch.version.cuda,
        "cpu_count": os.cpu_count(),
        "processor": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "workers": workers,
        "aec_revision": source_revision(),
        "versions": {p: _version(p) for p in packages},
        "codec_libraries": {k: features.version(k)
                            for k in ("jpg", "webp", "avif", "jpg_2000", "zlib")},
        "note": note,
    }


def run_bench(options: BenchOptions) -> BenchResult:
    """Run the benchmark and write results.json, results.csv, summary.md and the plots."""
    from ..codec import resolve_device
    from . import report as bench_report

    for module in ("pytorch_msssim", "matplotlib", "scipy"):  # before hours of work
        if importlib.util.find_spec(module) is None:
            raise AecError(f"aec bench needs {module}: {install_command('bench')}")
    families = expand_families(options.codecs)
    max_errors = options.max_errors
    if max_errors is not None and (not max_errors or min(max_errors) < 0):
        raise AecError("--max-error takes bounds K >= 0, comma-separated")
    residual = max_errors is not None and NEURAL_FAMILY in families
    device = torch.device(resolve_device(options.device))
    log = options.log or (lambda message: None)
    folder, out = Path(options.folder), Path(options.out)
    limit = QUICK_IMAGES if options.quick and options.limit is None else options.limit
    aec_settings = AEC_QUICK_QUALITIES if options.quick else AEC_QUALITIES
    paths = list_images(folder, limit)
    classical = classical_codecs([c for c in families if c != NEURAL_FAMILY])
    specs = neural_specs(options.models, options.efforts) if NEURAL_FAMILY in families else []
    # The residual layer's rows: of the models that take it (the others get a curve only).
    layered = [s for s in specs if residual and s.model in RESIDUAL_BASE_MODELS
               and s.format_version is None]
    if residual and specs and not layered:
        raise AecError(f"--max-error: none of the models takes the residual layer "
                       f"({', '.join(RESIDUAL_BASE_MODELS)} does)")
    plan = [(_neural_config(s), aec_settings) for s in specs]
    plan += [(_residual_config(s), max_errors) for s in layered]
    plan += [(_classical_config(c), c.sweep(options.quick, max_errors)) for c in classical]
    workers = options.workers or min(os.cpu_count() or 1, MAX_POOL_WORKERS)
    out.mkdir(parents=True, exist_ok=True)
    cache = RowCache(Path(options.cache) / CACHE_FILE if options.cache else out / CACHE_NAME)
    meter = QualityMeter(device)

    images = []
    for p in paths:
        pixels = load_rgb(p)
        images.append(SourceImage(p, pixels, hashlib.sha1(pixels.tobytes()).hexdigest()[:16]))
    log(f"bench: {len(images)} image(s), {len(specs)} model(s), {len(classical)} classical "
        f"curve(s), device {device}, {workers} worker(s)")

    show = ProgressOptions(options.progress, log)
    for spec in specs:
        sweep_neural(spec, images, aec_settings, str(device), meter, cache, show,
                     options.analysis_batch)
        if spec in layered:
            assert max_errors is not None
            sweep_residual(spec, images, max_errors, str(device), meter, cache, log)
    sweep_classical(classical, images, options.quick, workers, meter, cache, show, max_errors)
    rows = _all_rows(cache, plan, images)

    speed = None
    if options.speed and specs:
        from .stage_timing import speed_report

        speed_devices = ["cpu"] + (["cuda"] if device.type == "cuda" else [])
        pil_images = [Image.fromarray(im.pixels) for im in images[:4]]
        speed = speed_report(pil_images, specs[0].model, speed_devices,
                             repeats=1 if options.quick else 3, log=log)
    report = bench_report.write_outputs(
        out, rows, folder=folder, images=[im.name for im in images],
        settings={
            "aec_qualities": list(aec_settings),
            "models": {s.label: _neural_config(s) for s in specs},  # name|format|weights
            "aec_max_errors": list(max_errors) if residual else None,
            "classical": {c.label: {"description": c.description, "knob": c.knob_name,
                                    "settings": list(c.sweep(options.quick, max_errors)),
                                    "options": c.options, "library": c.library}
                          for c in classical},
            "quick": options.quick,
        },
        table_codecs=[c.label for c in classical if c.bounded]
        + [RESIDUAL_LABEL.format(s.label) for s in layered],
        environment=environment(device, workers, options.note),
        speed=speed,
    )
    log(f"bench: wrote {out}")
    return BenchResult(rows, report, out)


def expand_families(names: Sequence[str]) -> list[str]:
    """``--codecs`` names as families, groups ("lossless") expanded, order kept."""
    unknown = set(names) - set(ALL_FAMILIES) - set(FAMILY_GROUPS)
    if unknown:
        raise AecError(f"unknown codec(s) {', '.join(sorted(unknown))}; choose from "
                       f"{','.join(ALL_FAMILIES)} or {','.join(FAMILY_GROUPS)}")
    families = [f for name in names for f in FAMILY_GROUPS.get(name, (name,))]
    return list(dict.fromkeys(families))


def _all_rows(cache: RowCache, plan: Sequence[tuple[str, Sequence[float]]],
              images: Sequence[SourceImage]) -> list[Row]:
    """This run's rows in a stable order, fresh or from the cache (a resumed run reports
    the same rows as an uninterrupted one); ``plan``: (cache identity, settings) of each
    codec."""
    rows = []
    for config, settings in plan:
        for im in images:
            for s in settings:
                row = cache.get(cache.key(config, im.digest, s))
                if row is None:
                    raise AecError(f"internal: no result for {config} on {im.name} at {s}")
                rows.append(row)
    return rows

