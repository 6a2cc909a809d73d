"""What an encode or a decode is asked to do: the options, their defaults and their
checks, each written once.

Every entry point builds an :class:`EncodeOptions` (or :class:`DecodeOptions`) and hands
it down: the ``aec`` command (once, from its flags), the data-set engine (which pickles
it to its workers), the Python API (:meth:`Codec.encode`, :func:`neuralcodec.encode`)
and the Pillow plugin. Building one checks it: an object that exists is valid. Each
problem has one :class:`OptionError`, whose message names the options it is about so
that each caller spells them its own way (``bpp`` in Python, ``--bpp`` on the command
line).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import AecError, AecWarning
from ..format.quality import DEFAULT_QUALITY
from ..io import lossy

if TYPE_CHECKING:
    from .codec import Codec

# Limit like Pillow's MAX_IMAGE_PIXELS; override with max_pixels or --max-pixels. Tiles
# bound the working memory, so what remains per pixel is the decoded image itself (4
# bytes in Pillow) and the file: 200 MP needs well under 2 GB besides the tiles.
DEFAULT_MAX_PIXELS = 200_000_000
# Tiles written by default: 1008 px squares coded with 8 px of overlap on each side with a
# neighbour, so an inner tile codes exactly 1024x1024 pixels (no padding; about 0.6 GB to
# decode). Kodak-sized images stay one tile, so their rate-distortion is unchanged. The
# overlap, cross-faded on decoding, removes the seams of independent tiles (a 1.5 dB PSNR
# dip along tile borders without it) for about 3 % more coded pixels.
DEFAULT_TILE_OVERLAP = 8
DEFAULT_TILE_SIZE = 1024 - 2 * DEFAULT_TILE_OVERLAP
# The largest region decoded at once: a tile of a version-3 file, or the whole image of
# an untiled version-1/2 file. Bounds a decoder's working memory per worker.
DEFAULT_MAX_TILE_PIXELS = 2048 * 2048
# Tile processes by default (workers=None): none below this many tiles, where starting
# them costs more than it saves; else one per CPU up to the cap (each worker holds its
# own model and tile: memory grows with them). Files are the same whatever the count.
PARALLEL_MIN_TILES = 8
MAX_AUTO_WORKERS = 4
# Tile sizes an encode may ask for: the largest is the one whose coded square (the tile
# and its overlap) a decoder with the default limit accepts; smaller tiles than the
# smallest spend more on overlap and padding than they code.
MIN_TILE_SIZE = 64
MAX_TILE_SIZE = math.isqrt(DEFAULT_MAX_TILE_PIXELS) - 2 * DEFAULT_TILE_OVERLAP
QUALITY_RANGE = (0, 100)
TARGETS = ("bpp", "size", "psnr")  # what a rate search can aim at instead of a quality
# The residual layer (near-lossless and lossless): the largest maximum error a file
# carries, the base models it is coded over (its residual models were trained on their
# exact synthesis), and the base qualities an encode tries when none is given.
MAX_ERROR_RANGE = (0, 8)
RESIDUAL_BASE_MODELS = ("aec-hp-ckbd",)
RESIDUAL_BASE_QUALITIES = (55.0, 70.0, 85.0)


class OptionError(AecError):
    """An option that cannot be used. Its message is a template naming the options it is
    about as ``{name}``: ``str()`` spells them as the Python API does, :meth:`words` as
    a caller does (the command line: ``--bpp``)."""

    def __init__(self, template: str, field: str | None = None):
        self.template = template
        super().__init__(self.words(), field)

    def words(self, spell: Callable[[str], str] = lambda name: name) -> str:
        return self.template.format_map(_Spelled(spell))

    def __reduce__(self):  # pickled with its template (Ray sends errors between processes)
        return type(self), (self.template, self.field)


class OptionNote(AecWarning):
    """A note that names options: a template as :class:`OptionError`'s message, which
    each caller spells its own way (:meth:`words`)."""

    def __init__(self, template: str):
        self.template = template
        super().__init__(self.words())

    words = OptionError.words


class _Spelled(dict):
    def __init__(self, spell: Callable[[str], str]):
        super().__init__()
        self.spell = spell

    def __missing__(self, name: str) -> str:
        return self.spell(name)


def _text(value: Any) -> str:
    """A value inside an OptionError template."""
    return str(value).replace("{", "{{").replace("}", "}}")


def _choices(names: tuple[str, ...]) -> str:
    spelled = [f"{{{name}}}" for name in names]
    return f"{', '.join(spelled[:-1])} and {spelled[-1]}"


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _at_least(name: str, value: Any, low: int, allow_none: bool = False) -> int | None:
    """A whole number of at least ``low`` (or None where allowed), as an int."""
    if value is None and allow_none:
        return None
    if not (_is_int(value) and value >= low):
        raise OptionError(f"{{{name}}} must be a whole number of at least {low}, got "
                          f"{_text(value)}", field=name)
    return int(value)


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise OptionError(f"{{{name}}} must be True or False, got {_text(value)}",
                          field=name)
    return bool(value)


def _positive(name: str, value: Any) -> float:
    if not (_is_real(value) and value > 0 and math.isfinite(value)):
        raise OptionError(f"{{{name}}} must be a positive number, got {_text(value)}",
                          field=name)
    return float(value)


def check_quality(quality: Any) -> float:
    """A quality 0..100, as a float."""
    low, high = QUALITY_RANGE
    if not (_is_real(quality) and low <= quality <= high):
        raise OptionError(f"{{quality}} must be between {low:g} and {high:g}, got "
                          f"{_text(quality)}", field="quality")
    return float(quality)


def max_effort(model: str | None) -> int:
    """The highest encoder effort of a model's family, found without loading the model."""
    from ..families.base import get_family
    from ..families.zoo import DEFAULT_MODEL, find_model

    family = get_family(find_model(model or DEFAULT_MODEL).family)
    return family.max_effort if family is not None else 1  # loading it will say why not


def check_effort(effort: Any, model: str | None, top: int | None = None) -> int:
    """An effort level the model offers (every model offers 1), as an int; ``top``, where
    the caller knows it (a loaded model), spares finding the model's family."""
    if _is_int(effort) and effort == 1:
        return 1
    if top is None:
        top = max_effort(model)
    if not (_is_int(effort) and 1 <= effort <= top):
        from ..families.zoo import DEFAULT_MODEL

        only = " (its family has no refinement)" if top == 1 else ""
        raise OptionError(f"{{effort}} {_text(effort)} is outside 1..{top} for model "
                          f"'{_text(model or DEFAULT_MODEL)}'{only}", field="effort")
    return int(effort)


def _output_quality(quality: Any) -> int:
    low, high = lossy.OUTPUT_QUALITY_RANGE
    if not (_is_int(quality) and low <= quality <= high):
        raise OptionError(f"{{output_quality}} must be a whole number from {low} to {high}, "
                          f"got {_text(quality)}", field="output_quality")
    return int(quality)


def check_tile_size(tile_size: Any) -> int:
    if not (_is_int(tile_size) and MIN_TILE_SIZE <= tile_size <= MAX_TILE_SIZE):
        raise OptionError(f"{{tile_size}} {_text(tile_size)} is outside "
                          f"{MIN_TILE_SIZE}..{MAX_TILE_SIZE}", field="tile_size")
    return int(tile_size)


def _max_error(value: Any) -> int | None:
    low, high = MAX_ERROR_RANGE
    if value is not None and not (_is_int(value) and low <= value <= high):
        raise OptionError(f"{{max_error}} must be a whole number from {low} to {high}, got "
                          f"{_text(value)}", field="max_error")
    return None if value is None else int(value)


def _check_residual(options: EncodeOptions) -> None:
    """What a near-lossless or lossless encode cannot be combined with."""
    asked = "{lossless}" if options.lossless else "{max_error}"
    if options.lossless and options.max_error not in (None, 0):
        raise OptionError(f"give {{lossless}} or {{max_error}} {options.max_error}, not "
                          "both", field="max_error")
    for name in TARGETS:
        if getattr(options, name) is not None:
            what = ("the residual layer's maximum error decides the fidelity"
                    if name == "psnr" else "its size follows from the image")
            raise OptionError(f"{{{name}}} cannot be combined with {asked}: {what}",
                              field="target")
    model = options.model
    if model is not None and model not in RESIDUAL_BASE_MODELS:
        raise OptionError(f"{asked} needs the base model "
                          f"{', '.join(RESIDUAL_BASE_MODELS)}, not '{_text(model)}'",
                          field="model")


@dataclass(frozen=True)
class EncodeOptions:
    """How to encode images.

    At most one of ``quality`` (0..100, higher is better) and the targets: ``bpp`` (the
    highest quality whose file has at most that many bits per pixel), ``size`` (at most
    that many bytes) or ``psnr`` (the lowest quality, so the smallest file, reaching that
    RGB PSNR in dB); with none, :data:`DEFAULT_QUALITY`. ``effort`` 1 is one pass of the
    analysis transform; higher levels, up to the model's family's, refine the latents of
    each image for a smaller file (see :meth:`Codec.encode`).

    ``model`` (None: the default model), ``device``, ``tile_size`` (None: the default)
    and ``max_pixels`` (None: no limit) make the codec (:meth:`codec`); ``frame`` picks
    one frame of an animated or multi-page file given by its path. The image's ICC
    profile (where it describes the pixels) and EXIF block are stored; ``strip`` drops
    the EXIF block (GPS, camera, dates) but for a non-default orientation, which keeps
    the picture upright.

    ``max_error`` K (0..8) adds the residual layer: every decoded sample is within K of
    the input; ``lossless`` is K = 0. The base layer's quality is then ``quality`` if
    given, else the one of 55, 70 and 85 whose file is smallest; no rate target can be
    given with them. A ``psnr`` target above what the base layer reaches uses the
    residual layer too (the largest K that reaches it).
    """

    quality: float | None = None
    bpp: float | None = None
    size: int | None = None
    psnr: float | None = None
    effort: int = 1
    model: str | None = None
    device: Any = "auto"
    tile_size: int = DEFAULT_TILE_SIZE
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    frame: int | None = None
    strip: bool = False

    lossless: bool = False
    max_error: int | None = None

    def __post_init__(self) -> None:
        given = [name for name in ("quality", *TARGETS) if getattr(self, name) is not None]
        if len(given) > 1:
            raise OptionError(f"give one of {_choices(('quality', *TARGETS))}, not "
                              f"{' and '.join(f'{{{name}}}' for name in given)}",
                              field="target")
        object.__setattr__(self, "lossless", _flag("lossless", self.lossless))
        object.__setattr__(self, "max_error", _max_error(self.max_error))
        if self.residual_error is not None:
            _check_residual(self)
        checked = {
            "quality": None if self.quality is None else check_quality(self.quality),
            "bpp": None if self.bpp is None else _positive("bpp", self.bpp),
            "size": _at_least("size", self.size, 1, allow_none=True),
            "psnr": None if self.psnr is None else _positive("psnr", self.psnr),
            "tile_size": DEFAULT_TILE_SIZE if self.tile_size is None
            else check_tile_size(self.tile_size),
            "max_pixels": _at_least("max_pixels", self.max_pixels, 1, allow_none=True),
            "frame": _at_least("frame", self.frame, 0, allow_none=True),
            "effort": check_effort(self.effort, self.model),
            "strip": _flag("strip", self.strip),
        }
        for name, value in checked.items():  # the checked values, as plain numbers
            object.__setattr__(self, name, value)

    @property
    def residual_error(self) -> int | None:
        """The maximum error K of the residual layer asked for (0: lossless), or None for
        a file of the base layer alone (which a ``psnr`` target may still extend)."""
        return 0 if self.lossless else self.max_error

    @property
    def target(self) -> tuple[str, float] | None:
        """(name, value) of the rate or fidelity target, or None to code at a quality."""
        for name in TARGETS:
            value = getattr(self, name)
            if value is not None:
                return name, value
        return None

    def require_target(self) -> tuple[str, float]:
        """The target; refused if there is none."""
        target = self.target
        if target is None:
            raise OptionError(f"give one of {_choices(TARGETS)}", field="target")
        return target

    @property
    def at_quality(self) -> float | None:
        """The quality to code at: the one given, or the default when no target is;
        None when a target chooses it, or the residual layer's encoder does."""
        if self.target is not None:
            return None
        if self.residual_error is not None:  # None: the encoder picks the base's
            return self.quality
        return DEFAULT_QUALITY if self.quality is None else self.quality

    def codec(self, workers: int | None = None) -> Codec:
        """A codec for these options (its model loads on first use); ``workers``
        processes code the tiles of large images (None: automatic, 1: in this one)."""
        from .codec import Codec

        return Codec(self.model, self.device, self.max_pixels, tile_size=self.tile_size,
                     workers=workers)


@dataclass(frozen=True)
class DecodeOptions:
    """How to decode .aec files. ``fmt`` is the image format written where the output's
    name is derived from the input's (png, webp, tif, ...); ``partial`` decodes the intact
    tiles of a damaged file (see :meth:`Codec.decode_partial`). ``device``,
    ``max_pixels`` (None: no limit) and ``max_tile_pixels`` (the largest region decoded
    at once; None: the default) make the codec (:meth:`codec`). ``output_quality``
    (1..100) is the quality of JPEG, WebP and AVIF outputs (None:
    :data:`~neuralcodec.io.lossy.DEFAULT_OUTPUT_QUALITY`; WebP at 100 is lossless);
    given for another format, the output is refused (:meth:`saving_quality`)."""

    fmt: str = "png"
    partial: bool = False
    device: Any = "auto"
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    max_tile_pixels: int = DEFAULT_MAX_TILE_PIXELS
    output_quality: int | None = None

    def __post_init__(self) -> None:
        from ..io.images import output_format

        if not isinstance(self.fmt, str):
            raise OptionError(f"{{fmt}} must be a format's suffix, got {_text(self.fmt)}",
                              field="fmt")
        try:
            output_format(f"x{self.suffix}")
        except AecError:
            raise OptionError(f"{{fmt}} {_text(self.fmt)}: not a format Pillow can write",
                              field="fmt") from None
        checked = {
            "max_pixels": _at_least("max_pixels", self.max_pixels, 1, allow_none=True),
            "max_tile_pixels": DEFAULT_MAX_TILE_PIXELS if self.max_tile_pixels is None
            else _at_least("max_tile_pixels", self.max_tile_pixels, 1),
            "partial": bool(self.partial),
            "output_quality": None if self.output_quality is None
            else _output_quality(self.output_quality),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def saving_quality(self, fmt: str) -> int | None:
        """The quality to save an image in Pillow format ``fmt`` at: ``output_quality``
        or the default for formats that take one, None for others. An
        ``output_quality`` given for a format that takes none is refused: it would be
        ignored."""
        if lossy.takes_quality(fmt):
            return (lossy.DEFAULT_OUTPUT_QUALITY if self.output_quality is None
                    else self.output_quality)
        if self.output_quality is not None:
            raise OptionError(f"{{output_quality}} applies to {lossy.quality_formats()} "
                              f"output, not {_text(fmt)}", field="output_quality")
        return None

    def note(self, where: str, fmt: str) -> OptionNote | None:
        """The note for outputs in ``fmt`` (``where`` names them), if the format loses
        pixels: once per run, not per file."""
        text = lossy.note(_text(where), fmt, self.saving_quality(fmt), "{output_quality}")
        return None if text is None else OptionNote(text)

    @property
    def suffix(self) -> str:
        """The suffix of derived output names, e.g. ".png"."""
        return "." + self.fmt.lower().lstrip(".")

    @property
    def pillow_format(self) -> str:
        """Pillow's name of the format, e.g. "PNG"."""
        from ..io.images import output_format

        return output_format(f"x{self.suffix}")

    def codec(self, workers: int | None = None) -> Codec:
        """A codec for these options; ``workers`` as in :meth:`EncodeOptions.codec`."""
        from .codec import Codec

        return Codec(None, self.device, self.max_pixels, workers=workers,
                     max_tile_pixels=self.max_tile_pixels)


Options = TypeVar("Options", EncodeOptions, DecodeOptions)


def with_fields(kind: type[Options], options: Options | None, changes: dict[str, Any]
                ) -> Options:
    """``options`` (default: ``kind()``) with some fields changed, checked again: what
    functions that take an options object or its fields as keywords build."""
    if options is None:
        return kind(**changes)
    if not isinstance(options, kind):
        raise AecError(f"options must be {kind.__name__}, not {type(options).__name__}")
    return replace(options, **changes) if changes else options


def default_of(kind: type, name: str) -> Any:
    """A field's default, for callers that show it (the command line's help)."""
    return next(f.default for f in fields(kind) if f.name == name)


__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_TILE_PIXELS",
    "DEFAULT_TILE_OVERLAP",
    "DEFAULT_TILE_SIZE",
    "MAX_TILE_SIZE",
    "MIN_TILE_SIZE",
    "DecodeOptions",
    "EncodeOptions",
    "OptionError",
    "OptionNote",
    "with_fields",
]
