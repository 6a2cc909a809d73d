"""Images in and out: opening with limits, native modes, alpha split, saving."""

from __future__ import annotations

import io
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import AecError, AecWarning, PrecisionWarning
from ..format.container import AEC_SUFFIX
from . import lossy
from .files import STDIO, atomic_write, read_bytes, reading, write_stdout
from .metadata import Notice, cmyk_to_srgb, matching_profile

# Modes coded natively; everything else is converted (with a notice) to one of these.
NATIVE_MODES = ("L", "LA", "RGB", "RGBA")

# PNG written with zlib's run-length strategy: on decoded images about 4x faster than
# the default strategy, for files about 2 % larger (benchmarks/png_write.py).
PNG_SAVE_OPTIONS = {"compress_type": zlib.Z_RLE}


def image_suffixes() -> frozenset[str]:
    """Suffixes of the image files aec encodes from a folder (``aec encode DIR``, data
    sets, ``aec bench``): those of every format Pillow can open, with the plugins
    registered so far, except .aec itself. Other files in a folder are left alone."""
    opened = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
    return frozenset(opened - {AEC_SUFFIX})


def warn(message: str, category: type[AecWarning] = AecWarning) -> None:
    warnings.warn(message, category, stacklevel=2)


def check_pixel_limit(width: int, height: int, max_pixels: int | None, what: str) -> None:
    """Refuse an image above the pixel limit, before its pixels are allocated."""
    if max_pixels is not None and width * height > max_pixels:
        raise AecError(
            f"{what} is {width}x{height} = {width * height} pixels, above the limit of "
            f"{max_pixels}", field="max_pixels")


def open_image(path: str | Path | IO[bytes], max_pixels: int | None = None,
               frame: int | None = None, name: str | None = None) -> Image.Image:
    """Open and fully decode an image (a path, ``-`` for standard input, or a binary file
    object), turning every failure into an AecError naming it (``name``, default: the
    path).

    The size is checked against ``max_pixels`` from the file's header, before Pillow
    decodes any pixels; Pillow's own decompression-bomb limit is replaced by ours. A file
    of several frames (animation, multi-page TIFF) is refused unless ``frame`` picks one.
    """
    if str(path) == STDIO:
        path, name = io.BytesIO(read_bytes(STDIO)), name or "stdin"
    name = name or str(path)
    with reading(name):
        try:
            with _pillow_pixel_limit(max_pixels), Image.open(path) as im:
                check_pixel_limit(*im.size, max_pixels, f"{name}: image")
                _select_frame(im, frame, name)
                deep = any(";16" in str(tile.args) for tile in im.tile)
                # The loaded pixels stay valid once the file is closed; no copy, which
                # would double the peak memory of a huge image.
                im.load()
                if deep and im.mode in ("RGB", "RGBA", "LA"):
                    warn(f"{name}: 16-bit {im.mode} image reduced to 8 bits per sample",
                         PrecisionWarning)
                return im
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            raise
        except UnidentifiedImageError:
            raise AecError(f"{name}: not an image file Pillow can read") from None
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise AecError(f"{name}: cannot read image ({exc})") from None


def as_image(source: Image.Image | str | Path | IO[bytes] | np.ndarray,
             max_pixels: int | None, frame: int | None = None) -> Image.Image:
    """A PIL image from what the API accepts: a PIL image, a path (``-``: standard
    input), a binary file object, or a uint8 array of shape (H, W), (H, W, 3) or
    (H, W, 4). ``frame`` picks one frame of a file (see :func:`open_image`)."""
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, np.ndarray):
        if source.dtype != np.uint8 or not (
                source.ndim == 2 or (source.ndim == 3 and source.shape[2] in (3, 4))):
            raise AecError(f"an image array must be uint8 of shape (H, W), (H, W, 3) or "
                           f"(H, W, 4), not {source.dtype} {source.shape}")
        check_pixel_limit(source.shape[1], source.shape[0], max_pixels, "array image")
        mode = "L" if source.ndim == 2 else ("RGB" if source.shape[2] == 3 else "RGBA")
        return Image.fromarray(np.ascontiguousarray(source), mode)
    if hasattr(source, "read"):
        return open_image(source, max_pixels, frame,
                          name=getattr(source, "name", "file object"))
    if isinstance(source, (str, Path)):
        return open_image(source, max_pixels, frame)
    raise AecError(f"cannot encode a {type(source).__name__}: give a PIL image, a path, "
                   "a binary file object or a uint8 array")


def _select_frame(im: Image.Image, frame: int | None, name: str) -> None:
    frames = getattr(im, "n_frames", 1)
    if frame is None:
        if frames > 1:
            raise AecError(f"{name}: has {frames} frames and aec codes one; choose it "
                           f"(0..{frames - 1})", field="frame")
        return
    if not 0 <= frame < frames:
        raise AecError(f"{name}: has no frame {frame} (frames 0..{frames - 1})",
                       field="frame")
    im.seek(frame)


@contextmanager
def _pillow_pixel_limit(max_pixels: int | None) -> Iterator[None]:
    """Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that; aec applies its
    own limit instead, so Pillow's is lifted while aec opens a file."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def native_image(im: Image.Image, icc: bytes | None, notice: Notice = warn
                 ) -> tuple[Image.Image, bytes | None]:
    """(the image in one of NATIVE_MODES, the ICC profile that describes those pixels or
    None), telling the user about any conversion and any profile dropped. A CMYK image
    goes to sRGB through its own profile where it has one."""
    if im.mode == "CMYK":
        return cmyk_to_srgb(im, icc, notice), None
    native = _normalize_mode(im, notice)
    return native, matching_profile(icc, native.mode, notice)


def _normalize_mode(im: Image.Image, notice: Notice = warn) -> Image.Image:
    """Return the image in one of NATIVE_MODES, telling the user about any conversion."""
    if im.mode in NATIVE_MODES:
        return im
    if im.mode == "P":
        has_alpha = "transparency" in im.info or im.palette.mode == "RGBA"
        target = "RGBA" if has_alpha else "RGB"
    elif im.mode in ("1",):
        target = "L"
    elif im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        target = "L"
        notice(f"{im.mode} image reduced to 8-bit grayscale (less precision)",
               PrecisionWarning)
        arr = np.asarray(im, dtype=np.float64)
        if im.mode != "F":
            # 16-bit samples (what files hold in these modes): full scale maps to full
            # scale, whatever this image's own range, so dark images stay dark.
            arr = arr / 257.0
        else:
            arr = arr * 255.0 if arr.max() <= 1.0 else arr
        return Image.fromarray(np.clip(np.round(arr), 0, 255).astype(np.uint8), "L")
    elif im.mode == "PA":
        target = "RGBA"
    elif im.mode == "La":
        target = "LA"
    elif im.mode == "RGBa":
        target = "RGBA"
    else:
        target = "RGB"
    notice(f"{im.mode} image converted to {target}")
    return im.convert(target)


def split_alpha(im: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """(colour image in L or RGB, alpha band or None)."""
    if im.mode == "RGBA":
        return im.convert("RGB"), im.getchannel("A")
    if im.mode == "LA":
        return im.convert("L"), im.getchannel("A")
    return im, None


def merge_alpha(im: Image.Image, alpha: Image.Image | None) -> Image.Image:
    if alpha is None:
        return im
    out = im.convert("LA" if im.mode == "L" else "RGBA")
    out.putalpha(alpha)
    return out


def output_format(path: str | Path) -> str:
    """Pillow format name for an output path's suffix; PNG when there is none."""
    suffix = Path(path).suffix.lower()
    if not suffix:
        return "PNG"
    Image.preinit()  # the common formats; every plugin (init) only for the others
    if suffix not in Image.EXTENSION:
        Image.init()
    fmt = Image.EXTENSION.get(suffix)
    if fmt is None or fmt not in Image.SAVE:
        raise AecError(f"{path}: cannot write images with suffix '{suffix}'")
    return fmt


def save_image(im: Image.Image, path: str | Path, overwrite: bool = True,
               fmt: str | None = None, quality: int | None = None) -> None:
    """Save atomically in ``fmt`` or the format the suffix names (PNG if none), keeping
    the ICC profile and EXIF block where the format can hold them; ``-`` writes standard
    output. Without ``overwrite`` an existing file is refused. Lossy formats (JPEG, WebP,
    AVIF) are saved at ``quality`` (None: :data:`lossy.DEFAULT_OUTPUT_QUALITY`, never
    Pillow's default); saying so is the caller's (:func:`lossy.note`)."""
    fmt = fmt or output_format(path)
    if fmt == "JPEG" and im.mode in ("RGBA", "LA"):
        warn(f"{path}: JPEG has no alpha channel; alpha dropped")
        im = im.convert("RGB" if im.mode == "RGBA" else "L")
    options = {key: im.info[key] for key in ("icc_profile", "exif") if im.info.get(key)}
    if fmt == "PNG":
        options.update(PNG_SAVE_OPTIONS)
    if lossy.takes_quality(fmt):
        options.update(lossy.save_options(fmt, quality or lossy.DEFAULT_OUTPUT_QUALITY))

    def write(f):
        try:
            im.save(f, format=fmt, **options)
        except (OSError, ValueError, KeyError) as exc:
            raise AecError(f"{path}: cannot write {fmt} ({exc})") from None

    if str(path) == STDIO:
        buffer = io.BytesIO()
        write(buffer)
        write_stdout(buffer.getvalue())
    else:
        atomic_write(path, write, overwrite)
