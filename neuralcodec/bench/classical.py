"""Classical codecs for ``aec bench``, through Pillow and ``imagecodecs``: what each curve
is and how it is swept.

Two kinds: rate-distortion curves (JPEG, WebP, AVIF, JPEG XL by quality and by distance,
JPEG 2000), swept up to their top settings so that the curves end near lossless; and the
*bounded* codecs of the lossless / near-lossless table (PNG, WebP lossless, JPEG XL
lossless, JPEG-LS with NEAR = K), whose setting is the largest error K they promise and
whose every decoded file is checked against it (a broken promise is an error, not a row).

Every codec is timed single-threaded (AVIF's, JPEG XL's and WebP's thread options set to
1) so that the worker pool, not the codec, decides how many cores are busy and per-image
seconds compare across codecs.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, features

from ..errors import AecError, install_command


@dataclass(frozen=True)
class ClassicalCodec:
    """One RD curve of a Pillow codec: a format, fixed options and a swept knob."""

    label: str  # the curve's name in results, e.g. "jpeg-444"
    family: str  # the --codecs name that selects it, e.g. "jpeg"
    pillow_format: str
    description: str  # how it was configured, for summary.md
    settings: tuple[float, ...]  # the sweep (values of the knob)
    quick_settings: tuple[float, ...]
    options: dict[str, Any] = field(default_factory=dict)
    # Maps one sweep value to Pillow save() arguments; default: quality=value.
    knob: Callable[[float], dict[str, Any]] | None = None
    knob_name: str = "quality"
    # "imagecodecs": pillow_format is then imagecodecs' codec name ("webp", "jpegxl", ...)
    library: str = "pillow"
    decode_options: dict[str, Any] = field(default_factory=dict)
    # A lossless / near-lossless codec of the table: the setting is the error bound K.
    bounded: bool = False
    near: bool = False  # bounded and swept over the run's K list (JPEG-LS NEAR=K)

    def save_args(self, setting: float) -> dict[str, Any]:
        swept = self.knob(setting) if self.knob else {"quality": int(setting)}
        return {**self.options, **swept}

    def sweep(self, quick: bool, max_errors: Sequence[int] | None = None) -> tuple[float, ...]:
        """The settings of one run: the quick or full sweep, or the run's K list."""
        if self.near and max_errors is not None:
            return tuple(max_errors)
        return self.quick_settings if quick else self.settings


def _jpeg2000_rate(target_bpp: float) -> dict[str, Any]:
    # OpenJPEG takes a compression ratio against the raw 24-bit RGB size.
    return {"quality_mode": "rates", "quality_layers": [24.0 / target_bpp]}


def _lossless(setting: float) -> dict[str, Any]:
    return {}  # the codec's options already ask for lossless coding


def _jpegls_near(k: float) -> dict[str, Any]:
    return {"level": int(k)}  # imagecodecs' level is CharLS's NEAR


def _jxl_distance(distance: float) -> dict[str, Any]:
    return {"distance": distance}


MAX_POOL_WORKERS = 8  # default worker processes of the Pillow codecs: the CPUs, at most this
_QUALITY_SWEEP = (5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100)
_QUICK_SWEEP = (10, 40, 70, 90)
_AVIF_SWEEP = (10, 20, 30, 40, 55, 70, 80, 90, 100)
_AVIF_QUICK = (20, 50, 80)
_AVIF_OPTIONS = {"speed": 4, "max_threads": 1}  # speed 4: slower than the default 6, denser

CLASSICAL_CODECS: tuple[ClassicalCodec, ...] = (
    ClassicalCodec("jpeg-420", "jpeg", "JPEG", "libjpeg via Pillow, 4:2:0 (Pillow default)",
                   _QUALITY_SWEEP, _QUICK_SWEEP, {"subsampling": 2}),
    ClassicalCodec("jpeg-444", "jpeg", "JPEG", "libjpeg via Pillow, 4:4:4",
                   _QUALITY_SWEEP, _QUICK_SWEEP, {"subsampling": 0}),
    # The same qualities as JPEG: BD-rate depends on the overlap, and independent WebP vs
    # JPEG figures (about -37 % on Kodak) sweep both alike.
    ClassicalCodec("webp", "webp", "WEBP", "libwebp via Pillow, method 6 (slowest, best)",
                   _QUALITY_SWEEP, _QUICK_SWEEP, {"method": 6}),
    ClassicalCodec("avif-444", "avif", "AVIF", "libavif via Pillow, 4:4:4, speed 4",
                   _AVIF_SWEEP, _AVIF_QUICK, {**_AVIF_OPTIONS, "subsampling": "4:4:4"}),
    ClassicalCodec("avif-420", "avif", "AVIF", "libavif via Pillow, 4:2:0, speed 4",
                   _AVIF_SWEEP, _AVIF_QUICK, {**_AVIF_OPTIONS, "subsampling": "4:2:0"}),
    ClassicalCodec("jxl", "jxl", "JXL", "libjxl via pillow-jxl-plugin, effort 7 (default)",
                   # 99 (distance 0.19) is its top: quality 100 asks libjxl for lossless,
                   # which the plugin refuses.
                   (10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99), _QUICK_SWEEP,
                   {"num_threads": 1}),
    # Butteraugli distance down to 0.1 (about 48 dB on Kodak); listed from the largest so
    # that the rate rises along the sweep as for the others.
    ClassicalCodec("jxl-distance", "jxl-distance", "jpegxl",
                   "libjxl via imagecodecs, effort 7, swept by Butteraugli distance",
                   (6.0, 4.0, 3.0, 2.0, 1.5, 1.0, 0.7, 0.5, 0.35, 0.2, 0.1), (3.0, 1.0, 0.2),
                   {"effort": 7, "numthreads": 1}, knob=_jxl_distance, knob_name="distance",
                   library="imagecodecs", decode_options={"numthreads": 1}),
    # mct=1: code YCbCr rather than Pillow's default of raw RGB (~3 dB better on Kodak).
    ClassicalCodec("jpeg2000", "jpeg2000", "JPEG2000",
                   "OpenJPEG via Pillow, 9/7 irreversible wavelet, colour transform, swept by "
                   "target bpp", (0.1, 0.15, 0.25, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5),
                   (0.15, 0.5, 1.5), {"irreversible": True, "mct": 1}, knob=_jpeg2000_rate,
                   knob_name="target bpp"),
)
# The lossless / near-lossless table (the anchors of issue 41's residual layer): slow
# (WebP lossless method 6 takes about 10 s per Kodak image), so not in the default run.
BOUNDED_CODECS: tuple[ClassicalCodec, ...] = (
    ClassicalCodec("png", "png", "PNG", "PNG via Pillow, optimize", (0,), (0,),
                   {"optimize": True}, knob=_lossless, knob_name="max error", bounded=True),
    ClassicalCodec("webp-lossless", "webp-lossless", "webp",
                   "libwebp via imagecodecs, lossless, method 6, quality 100", (0,), (0,),
                   {"lossless": True, "method": 6, "level": 100, "numthreads": 1},
                   knob=_lossless, knob_name="max error", library="imagecodecs", bounded=True),
    ClassicalCodec("jxl-lossless", "jxl-lossless", "jpegxl",
                   "libjxl via imagecodecs, lossless, effort 7", (0,), (0,),
                   {"lossless": True, "effort": 7, "numthreads": 1}, knob=_lossless,
                   knob_name="max error", library="imagecodecs",
                   decode_options={"numthreads": 1}, bounded=True),
    # CharLS codes R, G and B without a colour transform (imagecodecs exposes none).
    ClassicalCodec("jpegls", "jpegls", "jpegls",
                   "CharLS via imagecodecs, lossless (K = 0) and NEAR = K", (0, 1, 2, 4),
                   (0, 1, 2, 4), knob=_jpegls_near, knob_name="max error",
                   library="imagecodecs", bounded=True, near=True),
)
ALL_CODECS = CLASSICAL_CODECS + BOUNDED_CODECS
# A run's classical families unless told: the lossless table's codecs and JPEG XL by
# distance are left out, so that the default run stays as fast as it was.
DEFAULT_CLASSICAL = ("jpeg", "webp", "avif", "jxl", "jpeg2000")
CLASSICAL_FAMILIES = tuple(dict.fromkeys(c.family for c in ALL_CODECS))
# --codecs names that stand for several families.
FAMILY_GROUPS = {"lossless": tuple(dict.fromkeys(c.family for c in BOUNDED_CODECS))}


def _imagecodecs() -> Any:
    try:
        import imagecodecs
    except ImportError:
        return None
    return imagecodecs


def format_available(pillow_format: str, library: str = "pillow") -> bool:
    """Whether this Pillow (or imagecodecs) can write ``pillow_format`` (JXL needs
    pillow-jxl-plugin)."""
    if library == "imagecodecs":
        imagecodecs = _imagecodecs()
        return imagecodecs is not None and bool(getattr(imagecodecs, pillow_format.upper())
                                                .available)
    if pillow_format == "JXL":
        try:
            import pillow_jxl  # noqa: F401  (registers JXL with Pillow on import)
        except ImportError:
            return False
        return True
    module = {"WEBP": "webp", "AVIF": "avif", "JPEG2000": "jpg_2000", "JPEG": "jpg",
              "PNG": "zlib"}
    return bool(features.check(module[pillow_format]))


def classical_codecs(families: Sequence[str]) -> list[ClassicalCodec]:
    """The curves of the requested families; an unavailable format is an error."""
    chosen = [c for c in ALL_CODECS if c.family in families]
    for c in chosen:
        if not format_available(c.pillow_format, c.library):
            if c.library == "imagecodecs":
                raise AecError(f"codec {c.family} needs imagecodecs with {c.pillow_format}: "
                               f"{install_command('bench')}")
            hint = " (pip install pillow-jxl-plugin)" if c.family == "jxl" else ""
            raise AecError(f"codec {c.family}: this Pillow cannot write {c.pillow_format}{hint}")
    return chosen


def library_versions() -> dict[str, str | None]:
    """The versions of the libraries imagecodecs wraps (part of a curve's cache key)."""
    imagecodecs = _imagecodecs()
    if imagecodecs is None:
        return {}
    return {name: getattr(imagecodecs, f"{name}_version")()
            for name in ("webp", "jpegxl", "jpegls")} | {"imagecodecs": imagecodecs.__version__}


@dataclass
class Coded:
    """One image through one codec setting: the bytes' size, timings and the decoded pixels."""

    setting: float
    num_bytes: int
    encode_s: float
    decode_s: float
    decoded: np.ndarray  # uint8 (H, W, 3)
    max_error: int | None = None  # the largest decoded sample's error (bounded codecs)


def max_abs_error(image: np.ndarray, decoded: np.ndarray) -> int:
    return int(np.abs(decoded.astype(np.int16) - image.astype(np.int16)).max())


def check_bound(label: str, image: np.ndarray, decoded: np.ndarray, k: int) -> int:
    """The decoded file's largest error, which must be at most ``k`` (0: lossless): a codec
    that breaks its promise stops the run loudly rather than giving a row."""
    if decoded.shape != image.shape:
        raise AecError(f"{label} at K={k}: decoded shape {decoded.shape} != {image.shape}")
    error = max_abs_error(image, decoded)
    if error > k:
        what = "not lossless" if k == 0 else f"beyond its bound K={k}"
        raise AecError(f"{label}: a decoded sample is {error} levels off, {what}")
    return error


def _pillow_round_trip(codec: ClassicalCodec, source: Image.Image, setting: float
                       ) -> tuple[bytes, float, float, np.ndarray]:
    buffer = io.BytesIO()
    t0 = time.perf_counter()
    source.save(buffer, format=codec.pillow_format, **codec.save_args(setting))
    t1 = time.perf_counter()
    buffer.seek(0)
    with Image.open(buffer) as restored:
        restored.load()  # Pillow decodes lazily: force it inside the timed region
        t2 = time.perf_counter()
        decoded = np.asarray(restored.convert("RGB"))
    return buffer.getvalue(), t1 - t0, t2 - t1, decoded


def _imagecodecs_round_trip(codec: ClassicalCodec, image: np.ndarray, setting: float
                            ) -> tuple[bytes, float, float, np.ndarray]:
    import imagecodecs

    t0 = time.perf_counter()
    data = getattr(imagecodecs, f"{codec.pillow_format}_encode")(image, **codec.save_args(setting))
    t1 = time.perf_counter()
    decoded = getattr(imagecodecs, f"{codec.pillow_format}_decode")(data, **codec.decode_options)
    t2 = time.perf_counter()
    return bytes(data), t1 - t0, t2 - t1, np.asarray(decoded)


def run_classical(codec: ClassicalCodec, image: np.ndarray, settings: Sequence[float]
                  ) -> list[Coded]:
    """Encode and decode an RGB uint8 image at each setting, timing both directions; a
    bounded codec's files are checked against their bound."""
    if codec.pillow_format == "JXL":
        import pillow_jxl  # noqa: F401  (registration is per process: workers need it too)
    source = Image.fromarray(image, "RGB")
    out = []
    for setting in settings:
        if codec.library == "imagecodecs":
            data, encode_s, decode_s, decoded = _imagecodecs_round_trip(codec, image, setting)
        else:
            data, encode_s, decode_s, decoded = _pillow_round_trip(codec, source, setting)
        error = None
        if codec.bounded:
            error = check_bound(codec.label, image, decoded, int(setting))
        elif decoded.shape != image.shape:
            raise AecError(f"{codec.label} at {setting:g}: decoded shape {decoded.shape} "
                           f"!= {image.shape}")
        out.append(Coded(setting, len(data), encode_s, decode_s, decoded, error))
    return out
