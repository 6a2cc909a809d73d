"""Classical codecs for ``aec bench``, through Pillow: what each curve is and how it is swept.

Every codec is timed single-threaded (AVIF's and JPEG
XL's thread options set to 1) so that the worker pool, not the codec, decides how many
cores are busy and per-image seconds compare across codecs.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, features

from ..errors import AecError


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

    def save_args(self, setting: float) -> dict[str, Any]:
        swept = self.knob(setting) if self.knob else {"quality": int(setting)}
        return {**self.options, **swept}


def _jpeg2000_rate(target_bpp: float) -> dict[str, Any]:
    # OpenJPEG takes a compression ratio against the raw 24-bit RGB size.
    return {"quality_mode": "rates", "quality_layers": [24.0 / target_bpp]}


MAX_POOL_WORKERS = 8  # default worker processes of the Pillow codecs: the CPUs, at most this
_QUALITY_SWEEP = (5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95)
_QUICK_SWEEP = (10, 40, 70, 90)
_AVIF_SWEEP = (10, 20, 30, 40, 55, 70, 80, 90)
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
                   (10, 20, 30, 40, 50, 60, 70, 80, 90, 95), _QUICK_SWEEP, {"num_threads": 1}),
    # mct=1: code YCbCr rather than Pillow's default of raw RGB (~3 dB better on Kodak).
    ClassicalCodec("jpeg2000", "jpeg2000", "JPEG2000",
                   "OpenJPEG via Pillow, 9/7 irreversible wavelet, colour transform, swept by "
                   "target bpp", (0.1, 0.15, 0.25, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5),
                   (0.15, 0.5, 1.5), {"irreversible": True, "mct": 1}, knob=_jpeg2000_rate,
                   knob_name="target bpp"),
)
CLASSICAL_FAMILIES = tuple(dict.fromkeys(c.family for c in CLASSICAL_CODECS))


def format_available(pillow_format: str) -> bool:
    """Whether this Pillow can write ``pillow_format`` (JXL needs pillow-jxl-plugin)."""
    if pillow_format == "JXL":
        try:
            import pillow_jxl  # noqa: F401  (registers JXL with Pillow on import)
        except ImportError:
            return False
        return True
    module = {"WEBP": "webp", "AVIF": "avif", "JPEG2000": "jpg_2000", "JPEG": "jpg"}
    return bool(features.check(module[pillow_format]))


def classical_codecs(families: Sequence[str]) -> list[ClassicalCodec]:
    """The curves of the requested families; an unavailable format is an error."""
    chosen = [c for c in CLASSICAL_CODECS if c.family in families]
    for c in chosen:
        if not format_available(c.pillow_format):
            hint = " (pip install pillow-jxl-plugin)" if c.family == "jxl" else ""
            raise AecError(f"codec {c.family}: this Pillow cannot write {c.pillow_format}{hint}")
    return chosen


@dataclass
class Coded:
    """One image through one codec setting: the bytes' size, timings and the decoded pixels."""

    setting: float
    num_bytes: int
    encode_s: float
    decode_s: float
    decoded: np.ndarray  # uint8 (H, W, 3)


def run_classical(codec: ClassicalCodec, image: np.ndarray, settings: Sequence[float]
                  ) -> list[Coded]:
    """Encode and decode an RGB uint8 image at each setting, timing both directions."""
    if codec.pillow_format == "JXL":
        import pillow_jxl  # noqa: F401  (registration is per process: workers need it too)
    source = Image.fromarray(image, "RGB")
    out = []
    for setting in settings:
        buffer = io.BytesIO()
        t0 = time.perf_counter()
        source.save(buffer, format=codec.pillow_format, **codec.save_args(setting))
        t1 = time.perf_counter()
        buffer.seek(0)
        with Image.open(buffer) as restored:
            restored.load()  # Pillow decodes lazily: force it inside the timed region
            t2 = time.perf_counter()
            decoded = np.asarray(restored.convert("RGB"))
        if decoded.shape != image.shape:
            raise AecError(f"{codec.label} at {setting:g}: decoded shape {decoded.shape} "
                           f"!= {image.shape}")
        out.append(Coded(setting, buffer.getbuffer().nbytes, t1 - t0, t2 - t1, decoded))
    return out
