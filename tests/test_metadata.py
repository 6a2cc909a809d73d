"""ICC profile and EXIF (orientation included) survive encode and decode."""

from __future__ import annotations

from PIL import Image, ImageCms

from neuralcodec import Codec
from neuralcodec.cli import run
from neuralcodec.format import container
from neuralcodec.format.chunks import CHUNK_ICC

from .helpers import photo_like

ORIENTATION = 0x0112


def _tagged(mode: str = "RGB") -> tuple[Image.Image, bytes]:
    im = Image.fromarray(photo_like(48, 32, seed=7), "RGB").convert(mode)
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
    assert set(parsed.chunks) == {b"need"}  # the lowest aec that decodes it, no metadata
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
