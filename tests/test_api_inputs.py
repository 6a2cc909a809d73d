"""The Python API takes what programs hold, and reports without echoing data or printing."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image, ImageCms

import neuralcodec
from neuralcodec import AecError, AecWarning
from neuralcodec.format import container

from .helpers import photo_like


@pytest.mark.parametrize("shape, mode", [((24, 40), "L"), ((24, 40, 3), "RGB"),
                                         ((24, 40, 4), "RGBA")])
def test_encode_takes_arrays(shape, mode):
    rgb = photo_like(40, 24, seed=2)
    array = rgb[..., 0] if len(shape) == 2 else (
        rgb if shape[2] == 3 else np.dstack([rgb, np.full((24, 40), 200, np.uint8)]))
    out = neuralcodec.decode(neuralcodec.encode(array, 80))
    assert out.mode == mode and out.size == (40, 24)


def test_a_wrong_array_is_one_clear_error():
    with pytest.raises(AecError, match="uint8"):
        neuralcodec.encode(np.zeros((8, 8, 3), np.float32))


def test_an_empty_image_is_refused_before_any_file_is_written():
    for empty in (np.zeros((0, 10, 3), np.uint8), Image.new("RGB", (7, 0))):
        with pytest.raises(AecError, match="nothing to encode"):
            neuralcodec.encode(empty, 50)


def test_file_objects_and_paths_both_ways(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(photo_like(32, 24), "RGB").save(buffer, format="PNG")
    buffer.seek(0)
    data = neuralcodec.encode(buffer, 60)
    path = tmp_path / "x.aec"
    path.write_bytes(data)
    for source in (data, path, str(path), io.BytesIO(data)):
        assert neuralcodec.decode(source).size == (32, 24)


def test_errors_do_not_echo_the_input():
    garbage = b"\x00garbage" * 10_000
    with pytest.raises(AecError) as error:
        neuralcodec.decode(garbage)
    assert len(str(error.value)) < 200


def test_notes_are_warnings_not_prints(capsys):
    gray16 = Image.fromarray(np.full((16, 16), 30000, np.uint16))
    with pytest.warns(AecWarning, match="8-bit"):
        neuralcodec.encode(gray16, 50)
    assert capsys.readouterr().err == ""
    with warnings.catch_warnings():
        warnings.simplefilter("error", AecWarning)  # a program can make them errors
        with pytest.raises(AecWarning):
            neuralcodec.encode(gray16, 50)


class _RecordingReader(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.ranges: list[tuple[int, int]] = []

    def read(self, size: int | None = -1) -> bytes:
        start = self.tell()
        chunk = super().read(size)
        self.ranges.append((start, start + len(chunk)))
        return chunk


def test_pillow_open_reads_no_pixels_and_save_keeps_given_metadata():
    """Opening reads the header, the chunk directory and the metadata, no tile's bytes."""
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buffer = io.BytesIO()
    Image.fromarray(photo_like(48, 32), "RGB").save(buffer, format="AEC", quality=50,
                                                    icc_profile=icc)
    data = buffer.getvalue()
    # Payloads follow the directory: the tiles' first, then the metadata's.
    unpacked = container.unpack(data)
    tiles = sum(len(p) for tile in unpacked.tiles for p in tile.values())
    first = len(data) - tiles - sum(len(p) for p in unpacked.chunks.values())
    reader = _RecordingReader(data)
    im = Image.open(reader)
    assert im.size == (48, 32) and im.info.get("icc_profile") == icc
    assert all(end <= first or start >= first + tiles for start, end in reader.ranges)
    im.load()
    assert im.info.get("icc_profile") == icc
