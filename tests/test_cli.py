"""The aec command line: outputs, exit codes, one-line errors, no partial files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neuralcodec.cli import run

from .helpers import photo_like, save_photo

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def png(tmp_path) -> Path:
    return save_photo(tmp_path / "photo.png", 70, 50, seed=4)


def test_encode_decode_info_with_positional_output(tmp_path, png, capsys):
    aec = tmp_path / "photo.aec"
    back = tmp_path / "back.png"
    assert run(["encode", str(png), str(aec), "-q", "60"]) == 0
    assert "bpp" in capsys.readouterr().out
    assert run(["decode", str(aec), str(back)]) == 0
    assert Image.open(back).size == (70, 50)
    assert run(["info", str(aec)]) == 0
    out = capsys.readouterr().out
    assert "quality         60.0" in out and "70" in out


def test_default_output_names(tmp_path, png):
    assert run(["encode", str(png)]) == 0
    assert (tmp_path / "photo.aec").exists()
    (png).unlink()
    assert run(["decode", str(tmp_path / "photo.aec")]) == 0
    assert (tmp_path / "photo.png").exists()


def test_decoded_format_follows_suffix(tmp_path, png):
    aec = tmp_path / "photo.aec"
    run(["encode", str(png), "-o", str(aec)])
    for suffix, fmt in ((".webp", "WEBP"), (".jpg", "JPEG"), (".tif", "TIFF")):
        out = tmp_path / f"out{suffix}"
        assert run(["decode", str(aec), "-o", str(out)]) == 0
        assert Image.open(out).format == fmt


def test_batch_to_folder_keeps_stems(tmp_path):
    names = []
    for i in range(3):
        p = tmp_path / f"kodim0{i}.png"
        Image.fromarray(photo_like(30, 20, seed=i), "RGB").save(p)
        names.append(str(p))
    out = tmp_path / "enc"
    assert run(["encode", *names, "-o", str(out), "-q", "30"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["kodim00.aec", "kodim01.aec", "kodim02.aec"]
    back = tmp_path / "dec"
    assert run(["decode", *sorted(map(str, out.iterdir())), "-o", str(back)]) == 0
    assert sorted(p.name for p in back.iterdir()) == ["kodim00.png", "kodim01.png", "kodim02.png"]


def test_bpp_option(tmp_path, png):
    aec = tmp_path / "t.aec"
    assert run(["encode", str(png), str(aec), "--bpp", "1.5"]) == 0
    assert 8 * aec.stat().st_size / (70 * 50) <= 1.5


def test_quality_and_bpp_together_is_a_usage_error(tmp_path, png, capsys):
    assert run(["encode", str(png), "-q", "50", "--bpp", "1"]) == 2
    assert "not --quality and --bpp" in capsys.readouterr().err


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_text("not an image"), "not an image file"),
        (lambda p: None, "no such file"),
    ],
)
def test_bad_encode_input(tmp_path, capsys, make, message):
    src = tmp_path / "bad.png"
    make(src)
    out = tmp_path / "bad.aec"
    assert run(["encode", str(src), str(out)]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_channel_context_options_are_refused_for_other_families(tmp_path, capsys):
    for option in (["--freeze-transforms", "5"], ["--channel-order", "stored"]):
        assert run(["train", str(tmp_path), "--family", "hyperprior", *option]) == 2
        assert "channel-context family" in capsys.readouterr().err


def _damaged(tmp_path, png, how) -> Path:
    aec = tmp_path / "photo.aec"
    run(["encode", str(png), str(aec)])
    data = bytearray(aec.read_bytes())
    if how == "truncate":
        data = data[: len(data) // 2]
    elif how == "flip":
        data[-3] ^= 0x10
    elif how == "version":
        data[8] = 7
    elif how == "model":
        data[13:24] = b"no-such-mdl"
        import struct
        import zlib
        hl = struct.unpack_from("<H", data, 10)[0]
        struct.pack_into("<I", data, hl - 4, zlib.crc32(bytes(data[: hl - 4])))
    aec.write_bytes(bytes(data))
    return aec


@pytest.mark.parametrize(
    "how, message",
    [
        ("truncate", "truncated"),
        ("flip", "CRC mismatch"),
        ("version", "format version 7 needs a later aec (0.2.0 reads versions 1-3)"),
        ("model", "needs model 'no-such-mdl' (fingerprint "),
    ],
)
def test_bad_aec_files(tmp_path, png, capsys, how, message):
    aec = _damaged(tmp_path, png, how)
    capsys.readouterr()
    out = tmp_path / "out.png"
    assert run(["decode", str(aec), str(out)]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()
    assert not list(tmp_path.glob("*.part"))


def test_batch_continues_after_a_failure(tmp_path, png, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    out = tmp_path / "o"
    assert run(["encode", str(bad), str(png), "-o", str(out)]) == 1
    assert (out / "photo.aec").exists() and not (out / "bad.aec").exists()
    assert "1 of 2 files failed" in capsys.readouterr().err


def test_models_lists_the_default(capsys):
    assert run(["models"]) == 0
    assert "aec-hp-ckbd (default)" in capsys.readouterr().out


def test_launcher_exit_codes_and_stderr(tmp_path):
    """The real launcher as a user runs it: one line on stderr, exit 1, no traceback."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bin" / "aec"), "decode", str(tmp_path / "missing.aec")],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"aec: error: {tmp_path / 'missing.aec'}: no such file"
    ]
    ok = subprocess.run([sys.executable, str(ROOT / "bin" / "aec"), "--help"],
                        capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0 and "encode" in ok.stdout


def test_no_partial_output_when_writing_fails(tmp_path, png, capsys):
    aec = tmp_path / "photo.aec"
    run(["encode", str(png), str(aec)])
    out = tmp_path / "missing-dir" / "x.png"
    assert run(["decode", str(aec), str(out)]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not np.any([p.suffix == ".part" for p in tmp_path.rglob("*")])


def test_limit_errors_name_the_option_to_raise(tmp_path, png, capsys):
    assert run(["encode", str(png), "--max-pixels", "100"]) == 1
    assert "raise it with --max-pixels" in capsys.readouterr().err
    aec = tmp_path / "x.aec"
    assert run(["encode", str(png), str(aec), "--quiet"]) == 0
    assert run(["decode", str(aec), "--max-tile-pixels", "100"]) == 1
    assert "raise it with --max-tile-pixels" in capsys.readouterr().err
