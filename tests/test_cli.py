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
from neuralcodec.format.container import MAGIC
from neuralcodec.version import __version__

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
        ("version", f"format version 7 needs a later aec ({__version__} reads versions 1-3)"),
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


# -- no guesses, no work before a refusal (issue 39, points 4 and 5) ---------------------


def test_a_second_name_that_is_no_output_and_no_input_is_a_usage_error(tmp_path, png, capsys):
    out = tmp_path / "out.bin"
    assert run(["encode", str(png), str(out)]) == 2
    assert capsys.readouterr().err == (
        f"aec: error: {out}: no such input; to name the output, use -o {out} "
        "(see 'aec encode --help')\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]  # no photo.aec
    aec = tmp_path / "photo.aec"
    assert run(["encode", str(png), str(aec), "--quiet"]) == 0  # IN OUT.aec still works
    assert run(["decode", str(aec), str(tmp_path / "other.aec")]) == 2
    assert "use -o" in capsys.readouterr().err


def _never(*args, **kwargs):
    raise AssertionError("coded before a refusal")


@pytest.mark.parametrize("command", ["encode", "decode"])
def test_a_missing_input_of_a_list_is_refused_before_any_work(tmp_path, png, capsys,
                                                              monkeypatch, command):
    from neuralcodec.codec import Codec

    first = png
    if command == "decode":
        first = tmp_path / "photo.aec"
        assert run(["encode", str(png), str(first), "--quiet"]) == 0
    monkeypatch.setattr(Codec, "encode_with", _never)
    monkeypatch.setattr(Codec, "decode", _never)
    missing, out = tmp_path / f"missing{first.suffix}", tmp_path / "out"
    assert run([command, str(first), str(missing), str(first), "-o", str(out)]) == 1
    assert capsys.readouterr().err == f"aec: error: {missing}: no such file\n"
    assert not out.exists()


def test_binary_data_to_a_terminal_is_refused_before_any_work(tmp_path, png, capsys,
                                                              monkeypatch):
    from neuralcodec.codec import Codec

    aec = tmp_path / "photo.aec"
    assert run(["encode", str(png), str(aec), "--quiet"]) == 0
    monkeypatch.setattr(Codec, "encode_with", _never)
    monkeypatch.setattr(Codec, "decode", _never)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    for args in (["encode", str(png), "-o", "-"], ["decode", str(aec), "-"]):
        assert run(args) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "terminal" in err


def _unwritable(folder: Path, monkeypatch) -> None:
    """A folder that takes no new files, as os.access sees it (root ignores modes)."""
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):
        real = os.access
        monkeypatch.setattr(os, "access", lambda path, mode, **kw: False
                            if Path(path) == folder and mode & os.W_OK else real(path, mode, **kw))


def test_an_unwritable_output_folder_is_refused_before_any_work(tmp_path, png, capsys,
                                                                monkeypatch):
    from neuralcodec.codec import Codec

    locked = tmp_path / "locked"
    _unwritable(locked, monkeypatch)
    monkeypatch.setattr(Codec, "encode_with", _never)
    other = save_photo(tmp_path / "other.png", 30, 20)
    try:
        for args in ([str(png), str(locked / "photo.aec")],  # one file
                     [str(png), str(other), "-o", str(locked / "new")],  # a list, -o DIR
                     [str(tmp_path), "-o", str(locked / "set")]):  # a data set
            assert run(["encode", *args]) == 1
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and "permission denied" in err, err
    finally:
        locked.chmod(0o755)
    assert not any(locked.iterdir())


def test_demo_keep_over_existing_files_is_refused_before_any_work(tmp_path, capsys,
                                                                  monkeypatch):
    from neuralcodec.codec import Codec

    (tmp_path / "kodim23.png").write_bytes(b"mine")
    monkeypatch.setattr(Codec, "encode", _never)
    assert run(["demo", "--keep", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err == f"aec: error: {tmp_path / 'kodim23.png'}: already exists, not replaced " \
                  "(use -f to replace it)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kodim23.png"]
    assert (tmp_path / "kodim23.png").read_bytes() == b"mine"


# -- one batch behaviour (issue 39, point 6) ---------------------------------------------


def test_a_list_has_the_lines_summary_and_resume_of_a_data_set(tmp_path, capsys):
    inputs = [save_photo(tmp_path / f"im{i}.png", 30, 20, seed=i) for i in range(3)]
    out = tmp_path / "out"
    names = [str(p) for p in inputs]
    assert run(["encode", *names, "-o", str(out), "-q", "30", "-v"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4, lines
    for src, line in zip(inputs, lines, strict=False):
        assert line.startswith(f"{src} -> {out / src.stem}.aec: ") and "PSNR" in line
    assert lines[-1].startswith("3 files: 3 coded, 0 skipped, 0 failed; ")
    # Interrupted after the first file: a rerun codes only the rest.
    (out / "im1.aec").unlink()
    (out / "im2.aec").unlink()
    assert run(["encode", *names, "-o", str(out), "-q", "30"]) == 0
    assert capsys.readouterr().out.startswith("3 files: 2 coded, 1 skipped, 0 failed; ")
    # An output that is not what was asked is a failed file (one error line), not
    # replaced unless -f.
    (out / "im0.aec").write_bytes(b"not mine to replace")
    assert run(["encode", *names, "-o", str(out), "-q", "30"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("3 files: 0 coded, 2 skipped, 1 failed; ")
    assert captured.err.count("\n") == 1 and "im0.aec: exists but" in captured.err
    assert (out / "im0.aec").read_bytes() == b"not mine to replace"
    assert run(["encode", *names, "-o", str(out), "-q", "30", "-f", "--quiet"]) == 0
    assert (out / "im0.aec").read_bytes().startswith(MAGIC)
    # decode: the same lines (-v) and summary.
    back = tmp_path / "back"
    aecs = [str(out / f"im{i}.aec") for i in range(3)]
    assert run(["decode", *aecs, "-o", str(back), "-v"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{aecs[0]} -> {back / 'im0.png'}: 30x20 RGB, ")
    assert lines[-1].startswith("3 files: 3 coded, 0 skipped, 0 failed; ")


def test_a_data_set_prints_a_line_per_file_with_v(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    save_photo(src / "a.png", 30, 20)
    out = tmp_path / "out"
    assert run(["encode", str(src), "-o", str(out), "-v"]) == 0
    first, summary = capsys.readouterr().out.splitlines()
    assert first.startswith(f"{src / 'a.png'} -> {out / 'a.aec'}: ") and "PSNR" in first
    assert summary.startswith("1 files: 1 coded")


# -- consistency (issue 39, point 11) ----------------------------------------------------


@pytest.mark.parametrize("args, command", [
    (["encode", "{png}", "-q", "101"], "encode"),
    (["encode", "{png}", "--effort", "9"], "encode"),
    (["encode", "{png}", "--no-such-option"], "encode"),
    (["encode", "{png}", "--quality"], "encode"),
    (["decode", "{png}", "--device", "tpu"], "decode"),
    (["info"], "info"),
    (["demo", "-q", "-1"], "demo"),
    (["bench", "{dir}", "--effort", "0"], "bench"),
    (["train", "{dir}", "--family", "vq", "--compile"], "train"),
    (["no-such-command"], None),
])
def test_every_usage_error_is_one_line_and_exit_code_2(tmp_path, png, capsys, args, command):
    args = [a.format(png=png, dir=tmp_path) for a in args]
    assert run(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("aec: error: ") and err.count("\n") == 1, err
    where = f"aec {command}" if command else "aec"
    assert err.endswith(f" (see '{where} --help')\n"), err


def _commands():
    from neuralcodec.cli.main import main

    return main.commands


def test_every_option_has_help_text():
    import click

    missing = []
    for name, command in _commands().items():
        params = list(command.params)
        for family_params in getattr(command, "family_params", {}).values():  # aec train
            params += family_params
        missing += [f"aec {name} {param.opts[0]}" for param in params
                    if isinstance(param, click.Option) and not param.help]
    assert missing == []


def test_the_command_list_shows_whole_summaries(capsys):
    assert run(["--help"]) == 0
    listing = capsys.readouterr().out.split("Commands:")[1]
    assert "..." not in listing
    for name, command in _commands().items():
        assert command.short_help and f"{name}  " in listing
        summary = " ".join(command.short_help.split())
        assert summary in " ".join(listing.split()), name


def test_json_outputs_are_json_lines(tmp_path, png, capsys):
    import json

    aec = tmp_path / "photo.aec"
    assert run(["encode", str(png), str(aec), "--quiet"]) == 0
    assert run(["info", "--json", str(aec), str(aec)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["file"] for line in lines] == [str(aec)] * 2
    assert run(["models", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows and all(isinstance(row, dict) and "name" in row for row in rows)


def test_format_with_a_named_output_file_is_a_usage_error(tmp_path, png, capsys):
    aec = tmp_path / "photo.aec"
    assert run(["encode", str(png), str(aec), "--quiet"]) == 0
    named = tmp_path / "back.png"
    for args in ([str(aec), str(named)], [str(aec), "-o", str(named)]):
        assert run(["decode", *args, "--format", "webp"]) == 2
        assert capsys.readouterr().err == (
            "aec: error: --format applies when the output name is derived or is standard "
            f"output; {named}'s suffix decides (see 'aec decode --help')\n")
    assert not named.exists()
    assert run(["decode", str(aec), "--format", "webp", "--quiet"]) == 0  # derived
    assert Image.open(tmp_path / "photo.webp").format == "WEBP"
