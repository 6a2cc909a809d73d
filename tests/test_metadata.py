"""ICC profile and EXIF (orientation included) survive encode and decode; a profile is
kept only where it describes the pixels (CMYK goes to sRGB through its own); ``strip``
keeps only the orientation."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

import neuralcodec
from neuralcodec import AecError, AecWarning, Codec
from neuralcodec.cli import run
from neuralcodec.format import container
from neuralcodec.format.chunks import CHUNK_EXIF, CHUNK_ICC
from neuralcodec.metrics import psnr

from .helpers import photo_like
from .icc import cmyk_profile, gray_profile

ORIENTATION = 0x0112


def _tagged(mode: str = "RGB") -> tuple[Image.Image, bytes]:
    """An image with a profile of its colour space and an EXIF block (orientation 6)."""
    im = Image.fromarray(photo_like(48, 32, seed=7), "RGB").convert(mode)
    if mode in ("L", "LA"):
        icc = gray_profile()
    else:
        icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # "rotate 90° clockwise to display"
    exif[0x010F] = "aec test camera"
    im.info["icc_profile"] = icc
    im.info["exif"] = exif.tobytes()
    return im, icc


def test_metadata_survives_the_api(codec):
    im, icc = _tagged()
    data = codec.encode(im, 60)
    assert container.unpack(data).chunks[CHUNK_ICC] == icc
    out = codec.decode(data)
    assert out.info["icc_profile"] == icc
    assert out.getexif()[ORIENTATION] == 6
    assert out.getexif()[0x010F] == "aec test camera"
    assert out.size == im.size  # pixels are stored as given; viewers apply the orientation


def test_metadata_survives_files_on_the_command_line(tmp_path):
    for suffix, mode in ((".jpg", "RGB"), (".png", "LA")):
        im, icc = _tagged(mode)
        src = tmp_path / f"in{suffix}"
        im.save(src, icc_profile=icc, exif=im.info["exif"])
        aec, out = tmp_path / f"x{suffix}.aec", tmp_path / f"out{suffix}.png"
        assert run(["encode", str(src), str(aec)]) == 0
        assert run(["decode", str(aec), str(out)]) == 0
        with Image.open(out) as back:
            assert back.info["icc_profile"] == icc
            assert back.getexif()[ORIENTATION] == 6


def test_files_without_metadata_have_no_metadata_chunks(codec, rgb_image):
    parsed = container.unpack(codec.encode(rgb_image, 50))
    # the lowest aec that decodes it and the exact synthesis marker, no metadata
    assert set(parsed.chunks) == {b"need", b"exsy"}
    assert "icc_profile" not in codec.decode(codec.encode(rgb_image, 50)).info


def test_untiled_formats_drop_metadata(rgb_image):
    im, _ = _tagged()
    data = Codec(device="cpu", format_version=2).encode(im, 50)
    assert "icc_profile" not in Codec(device="cpu").decode(data).info


def test_pillow_plugin_exposes_metadata(tmp_path, codec):
    im, icc = _tagged()
    path = tmp_path / "x.aec"
    path.write_bytes(codec.encode(im, 50))
    with Image.open(path) as opened:
        opened.load()
        assert opened.info["icc_profile"] == icc
        assert opened.getexif()[ORIENTATION] == 6


def _cmyk_jpeg(path, icc: bytes | None) -> Image.Image:
    """A CMYK JPEG (with ``icc`` embedded) whose black ink spans the picture; returns it
    as read back, so that comparisons leave the JPEG's own loss out."""
    rgb = photo_like(48, 32, seed=3)
    cmyk = np.empty((32, 48, 4), np.uint8)
    cmyk[..., :3] = 255 - rgb
    cmyk[..., 3] = np.linspace(0, 255, 48, dtype=np.uint8)[None, :]
    options = {"icc_profile": icc} if icc else {}
    Image.fromarray(cmyk, "CMYK").save(path, quality=95, **options)
    with Image.open(path) as back:
        back.load()
        return back


def test_cmyk_jpeg_is_converted_to_srgb_through_its_profile(tmp_path, capsys):
    src, aec, out = tmp_path / "cmyk.jpg", tmp_path / "x.aec", tmp_path / "x.png"
    icc = cmyk_profile()
    original = _cmyk_jpeg(src, icc)
    assert original.mode == "CMYK" and original.info["icc_profile"] == icc
    assert run(["encode", str(src), str(aec), "-q", "100"]) == 0
    assert (f"aec: note: {src}: CMYK image converted to sRGB through its ICC profile"
            in capsys.readouterr().err)
    assert CHUNK_ICC not in container.unpack(aec.read_bytes()).chunks  # the result is sRGB
    assert run(["decode", str(aec), str(out)]) == 0
    through_profile = ImageCms.profileToProfile(
        original, ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"),
        renderingIntent=ImageCms.Intent.PERCEPTUAL, outputMode="RGB")
    with Image.open(out) as back:
        assert "icc_profile" not in back.info
        decoded = np.asarray(back.convert("RGB"))
    assert psnr(np.asarray(through_profile), decoded) > 30
    assert psnr(np.asarray(original.convert("RGB")), decoded) < 20  # not the plain one


def test_cmyk_without_a_profile_is_converted_plainly_with_a_note(codec):
    cmyk = Image.fromarray(np.full((16, 16, 4), (0, 0, 0, 255), np.uint8), "CMYK")
    with pytest.warns(AecWarning, match="converted to RGB without an ICC profile"):
        data = codec.encode(cmyk, 100)
    assert not {CHUNK_ICC, CHUNK_EXIF} & set(container.unpack(data).chunks)  # no profile
    assert np.asarray(codec.decode(data)).mean() < 20  # black ink is black


@pytest.mark.parametrize("mode, profile", [
    ("L", "sRGB"), ("LA", "sRGB"), ("RGB", "gray"), ("RGBA", "gray"), ("RGB", "CMYK"),
    ("RGB", "not a profile")])
def test_a_profile_of_another_colour_space_is_dropped_with_a_note(codec, mode, profile):
    icc = {"sRGB": ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(),
           "gray": gray_profile(), "CMYK": cmyk_profile(),
           "not a profile": b"\x00\x00\x02\x0cfake profile" + bytes(40)}[profile]
    im = Image.fromarray(photo_like(24, 16), "RGB").convert(mode)
    im.info["icc_profile"] = icc
    with pytest.warns(AecWarning, match=f"does not describe the {mode} pixels; dropped"):
        data = codec.encode(im, 50)
    assert CHUNK_ICC not in container.unpack(data).chunks
    assert "icc_profile" not in codec.decode(data).info


def test_a_file_whose_profile_does_not_describe_its_pixels_decodes_without_it(codec):
    """Files made before profiles were checked may hold a CMYK profile beside RGB pixels:
    the decoded image does not carry it."""
    made = container.unpack(codec.encode(Image.fromarray(photo_like(24, 16), "RGB"), 50))
    data = container.pack(made.header, made.tiles, {CHUNK_ICC: cmyk_profile()})
    with pytest.warns(AecWarning, match="CMYK ICC profile does not describe the RGB"):
        decoded = codec.decode(data)
    assert "icc_profile" not in decoded.info


def _exif(**tags: int | str) -> bytes:
    exif = Image.Exif()
    for tag, value in tags.items():
        exif[{"orientation": ORIENTATION, "make": 0x010F, "gps": 0x8825}[tag]] = value
    return exif.tobytes()


def test_strip_keeps_only_the_orientation_and_the_profile():
    im, icc = _tagged()
    gps = Image.Exif()
    gps.load(im.info["exif"])
    gps.get_ifd(0x8825)[2] = (48.0, 51.0, 30.0)  # GPSLatitude
    im.info["exif"] = gps.tobytes()
    kept = neuralcodec.decode(neuralcodec.encode(im, 50))
    assert 0x8825 in kept.getexif() and kept.getexif()[0x010F] == "aec test camera"
    stripped = neuralcodec.decode(neuralcodec.encode(im, 50, strip=True))
    assert dict(stripped.getexif()) == {ORIENTATION: 6}
    assert stripped.info["icc_profile"] == icc
    options = neuralcodec.EncodeOptions(quality=50, strip=True)
    assert neuralcodec.encode_with(im, options) == neuralcodec.encode(im, 50, strip=True)
    # Upright pictures keep no EXIF at all.
    im.info["exif"] = _exif(orientation=1, make="aec test camera")
    assert CHUNK_EXIF not in container.unpack(neuralcodec.encode(im, 50, strip=True)).chunks


def test_strip_on_the_command_line(tmp_path, capsys):
    im, icc = _tagged()
    src, aec, out = tmp_path / "in.jpg", tmp_path / "x.aec", tmp_path / "out.jpg"
    im.save(src, icc_profile=icc, exif=im.info["exif"])
    assert run(["encode", str(src), str(aec), "--strip"]) == 0
    assert run(["decode", str(aec), str(out)]) == 0
    with Image.open(out) as back:
        assert dict(back.getexif()) == {ORIENTATION: 6}
        assert back.info["icc_profile"] == icc
    assert run(["encode", "--help"]) == 0
    assert "Drop EXIF (GPS, camera, dates) and XMP; the ICC profile is kept" in " ".join(
        capsys.readouterr().out.split())


def test_strip_must_be_true_or_false():
    with pytest.raises(AecError, match="strip must be True or False"):
        neuralcodec.EncodeOptions(strip="yes")


def test_a_data_set_rerun_with_strip_never_skips_an_unstripped_output(tmp_path, capsys):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    im, icc = _tagged()
    im.save(folder / "a.jpg", icc_profile=icc, exif=im.info["exif"])
    assert run(["encode", str(folder), "-o", str(out), "--quiet"]) == 0
    assert run(["encode", str(folder), "-o", str(out), "--strip"]) == 1
    assert "holds the EXIF metadata (GPS, camera, dates) that strip drops" in (
        capsys.readouterr().err)
    assert run(["encode", str(folder), "-o", str(out), "--strip", "-f", "--quiet"]) == 0
    kept = Image.Exif()
    kept.load(container.unpack((out / "a.aec").read_bytes()).chunks[CHUNK_EXIF])
    assert dict(kept) == {ORIENTATION: 6}
    assert run(["encode", str(folder), "-o", str(out), "--strip", "--quiet"]) == 0  # skipped
