"""Encode and decode options: built by every entry point (command line, data sets, Python
API, Pillow plugin), checked in one place with one wording per problem, before any
work; and help texts that print the definitions' defaults."""

from __future__ import annotations

import io
import pickle

import pytest
from PIL import Image

import neuralcodec
from neuralcodec.cli import run
from neuralcodec.datasets import encode_dataset
from neuralcodec.errors import AecError

from .helpers import photo_like, save_photo


def test_two_targets_are_refused_in_one_wording_everywhere(tmp_path, capsys):
    png = save_photo(tmp_path / "in.png", 40, 30)
    out = tmp_path / "out"
    message = "give one of quality, bpp, size and psnr, not quality and bpp"
    with pytest.raises(AecError) as error:
        encode_dataset([png], out, quality=50, bpp=1.0)
    assert str(error.value) == message
    with pytest.raises(AecError) as error:
        Image.open(png).save(io.BytesIO(), format="AEC", quality=50, bpp=1.0)
    assert str(error.value) == message
    # The command line says the same with its flags' names, as a usage error.
    for args in ([str(png), str(tmp_path / "x.aec")], [str(tmp_path), "-o", str(out)]):
        assert run(["encode", *args, "-q", "50", "--bpp", "1"]) == 2
        err = capsys.readouterr().err
        assert err == ("aec: error: give one of --quality, --bpp, --size and --psnr, not "
                       "--quality and --bpp (see 'aec encode --help')\n"), err
    assert not out.exists() and not (tmp_path / "x.aec").exists()


def test_an_effort_the_family_lacks_is_refused_before_any_work_everywhere(tmp_path, capsys):
    png = save_photo(tmp_path / "in.png", 40, 30)
    image = Image.open(png)
    message = "effort 2 is outside 1..1 for model 'aec-vq' (its family has no refinement)"
    for encode in (lambda: neuralcodec.encode(image, 50, model="aec-vq", effort=2),
                   lambda: neuralcodec.Codec("aec-vq", device="cpu").encode(image, effort=2),
                   lambda: image.save(io.BytesIO(), format="AEC", model="aec-vq", effort=2)):
        with pytest.raises(AecError) as error:
            encode()
        assert str(error.value) == message
    out = tmp_path / "out"
    with pytest.raises(AecError) as error:
        encode_dataset([png], out, model="aec-vq", effort=2)
    assert str(error.value) == message and not out.exists()
    for args in ([str(png), str(tmp_path / "x.aec")], [str(tmp_path), "-o", str(out)]):
        assert run(["encode", *args, "--model", "aec-vq", "--effort", "2"]) == 2
        assert capsys.readouterr().err == (f"aec: error: --{message} "
                                           "(see 'aec encode --help')\n")
    assert not out.exists() and not (tmp_path / "x.aec").exists()


def test_help_prints_the_defaults_of_the_definitions():
    from neuralcodec.cli.coding import decode, encode
    from neuralcodec.codec.codec import (
        DEFAULT_MAX_PIXELS,
        DEFAULT_MAX_TILE_PIXELS,
        DEFAULT_TILE_SIZE,
    )
    from neuralcodec.families.zoo import DEFAULT_MODEL
    from neuralcodec.format.quality import DEFAULT_QUALITY

    for command in (encode, decode):
        for param in command.params:
            assert "default:" not in (getattr(param, "help", None) or ""), param.name
    expected = {"quality": DEFAULT_QUALITY, "model": DEFAULT_MODEL, "effort": 1,
                "tile_size": DEFAULT_TILE_SIZE, "max_pixels": DEFAULT_MAX_PIXELS,
                "max_tile_pixels": DEFAULT_MAX_TILE_PIXELS}
    for command in (encode, decode):
        for param in command.params:
            if param.name in expected:
                assert param.default == expected[param.name] and param.show_default, param.name


def test_the_pillow_plugin_takes_a_rate_target():
    im = Image.fromarray(photo_like(64, 48, seed=3), "RGB")
    saved = io.BytesIO()
    im.save(saved, format="AEC", bpp=0.8)
    data, quality = neuralcodec.default_codec().encode_to_target(im, bpp=0.8)
    assert saved.getvalue() == data and quality < 100


def test_options_pick_a_frame_of_a_file_given_by_path(tmp_path):
    from neuralcodec import EncodeOptions, encode_with

    frames = [Image.fromarray(photo_like(32, 24, seed=s), "RGB") for s in (1, 2)]
    frames[0].save(tmp_path / "two.gif", save_all=True, append_images=frames[1:])
    with pytest.raises(AecError, match="has 2 frames"):
        encode_with(tmp_path / "two.gif", EncodeOptions())
    with Image.open(tmp_path / "two.gif") as im:
        im.seek(1)
        second = neuralcodec.encode(im.convert("RGB"), 40)
    assert encode_with(tmp_path / "two.gif", EncodeOptions(quality=40, frame=1)) == second


def test_options_travel_to_workers_and_keep_their_checks():
    """Data-set workers (Ray actors) receive the options pickled; a changed field is
    checked again."""
    from dataclasses import replace

    from neuralcodec.codec.options import EncodeOptions, OptionError
    from neuralcodec.datasets.worker import Settings

    settings = Settings(EncodeOptions(bpp=0.5, effort=2), measure_psnr=True)
    assert pickle.loads(pickle.dumps(settings)) == settings
    with pytest.raises(OptionError, match="not quality and bpp"):
        replace(settings.options, quality=60)
    error = pickle.loads(pickle.dumps(OptionError("{effort} {{3}} is too much", "effort")))
    assert (str(error), error.field) == ("effort {3} is too much", "effort")
    assert error.words(lambda name: f"--{name}") == "--effort {3} is too much"


def test_a_codec_refuses_options_for_another_model():
    from neuralcodec import EncodeOptions

    im = Image.fromarray(photo_like(16, 16), "RGB")
    with pytest.raises(AecError, match="options are for model 'aec-vq'"):
        neuralcodec.Codec(device="cpu").encode_with(im, EncodeOptions(model="aec-vq"))


def test_the_output_quality_is_checked_where_the_options_are_built():
    from neuralcodec import DecodeOptions
    from neuralcodec.codec.options import OptionError

    assert DecodeOptions().saving_quality("JPEG") == 95
    assert DecodeOptions().saving_quality("PNG") is None
    assert DecodeOptions(output_quality=100).saving_quality("WEBP") == 100
    for bad in (0, 101, 2.5, True, "80"):
        with pytest.raises(OptionError, match="output_quality must be a whole number"):
            DecodeOptions(output_quality=bad)
    with pytest.raises(OptionError, match="output_quality applies to JPEG, WebP and AVIF"):
        DecodeOptions(output_quality=80).saving_quality("PNG")
