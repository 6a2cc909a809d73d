"""The metadata stored beside the pixels: an ICC profile only where it describes them
(a CMYK image is brought to sRGB through its own), the EXIF block whole, or with
``strip`` only its orientation.

Each function that can drop something takes ``notice``, the caller's way of telling the
user (a warning with the file's name, in practice).
"""

from __future__ import annotations

import io
from collections.abc import Callable

from PIL import Image

Notice = Callable[..., None]  # (message[, warning category])

ORIENTATION = 0x0112  # the EXIF tag viewers turn the picture by
# The colour space (an ICC header's field) whose profile describes each coded mode.
_PROFILE_SPACE = {"L": "GRAY", "LA": "GRAY", "RGB": "RGB", "RGBA": "RGB"}


def image_metadata(im: Image.Image) -> tuple[bytes | None, bytes | None]:
    """(ICC profile, EXIF block) of an image, as stored in its file (``im.info``; an
    empty or None entry: none), or None each. An image without an EXIF entry gives the
    tags set on it in memory (``im.getexif()``)."""
    icc = im.info.get("icc_profile") or None
    if "exif" in im.info:
        exif = exif_bytes(im.info["exif"])
    else:
        exif = exif_bytes(im.getexif())
    return icc, exif


def exif_bytes(exif: bytes | str | Image.Exif | None) -> bytes | None:
    """An EXIF block as bytes, from what Pillow holds or takes (bytes, text, an
    ``Image.Exif``); None for an empty one."""
    if isinstance(exif, Image.Exif):
        return exif.tobytes() if len(exif) else None
    if isinstance(exif, str):  # some plugins keep it as text
        exif = exif.encode("latin-1")
    return exif or None


def profile_space(icc: bytes) -> str | None:
    """The colour space an ICC profile describes ("RGB", "GRAY", "CMYK", "Lab", ...),
    read from its header; None for bytes that are no ICC profile."""
    if len(icc) < 128 or icc[36:40] != b"acsp":
        return None
    return icc[16:20].decode("latin-1").strip()


def matching_profile(icc: bytes | None, mode: str, notice: Notice) -> bytes | None:
    """``icc`` if it describes pixels of ``mode`` (an RGB profile for RGB or RGBA, a gray
    one for L or LA); otherwise None, with a note: a profile of another colour space
    would make colour-managed viewers render the pixels wrongly."""
    if not icc:
        return None
    space = profile_space(icc)
    if space == _PROFILE_SPACE.get(mode):
        return icc
    what = f"{space} ICC profile" if space else "ICC profile that cannot be read"
    notice(f"{what} does not describe the {mode} pixels; dropped")
    return None


def cmyk_to_srgb(im: Image.Image, icc: bytes | None, notice: Notice) -> Image.Image:
    """A CMYK image in sRGB: through its own CMYK profile where it has one (perceptual
    intent, as a viewer would render it), else by Pillow's plain conversion; with a
    note either way. The result is sRGB, so no profile goes with it."""
    if icc and profile_space(icc) == "CMYK":
        from PIL import ImageCms

        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            rgb = ImageCms.profileToProfile(
                im, source, ImageCms.createProfile("sRGB"),
                renderingIntent=ImageCms.Intent.PERCEPTUAL, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError) as exc:
            notice(f"CMYK image converted to RGB without its ICC profile, which cannot "
                   f"be used ({exc}); colours are approximate")
        else:
            assert rgb is not None  # not in place, so a new image
            notice("CMYK image converted to sRGB through its ICC profile")
            return rgb
    else:
        notice("CMYK image converted to RGB without an ICC profile; colours are "
               "approximate")
    return im.convert("RGB")


def stripped_exif(exif: bytes | None) -> bytes | None:
    """What ``strip`` keeps of an EXIF block: its orientation alone, when it is not the
    default (1), so that the picture still shows upright; nothing else (GPS, camera,
    dates)."""
    if not exif:
        return None
    parsed = Image.Exif()
    try:
        parsed.load(exif)
        orientation = parsed.get(ORIENTATION)
    except (OSError, ValueError, SyntaxError, KeyError, TypeError, IndexError):
        return None  # unreadable: nothing of it is kept
    if not isinstance(orientation, int) or orientation == 1:
        return None
    kept = Image.Exif()
    kept[ORIENTATION] = orientation
    return kept.tobytes()


def attach_metadata(im: Image.Image, icc: bytes | None, exif: bytes | None,
                    notice: Notice) -> Image.Image:
    """Put an ICC profile (where it describes the pixels) and EXIF block in
    ``im.info``, where Pillow's writers look."""
    icc = matching_profile(icc, im.mode, notice)
    if icc:
        im.info["icc_profile"] = icc
    if exif:
        im.info["exif"] = exif
    return im
