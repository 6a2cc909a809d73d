"""The CLI never loses a user's data: no silent replacement, pipes, links and FIFOs
written through, no silently dropped content (16-bit depth, extra frames)."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neuralcodec.cli import run
from neuralcodec.format.container import MAGIC

from .helpers import photo_like, save_photo


@pytest.fixture()
def png(tmp_path) -> Path:
    return save_photo(tmp_path / "photo.png", 48, 32, seed=6)


def test_an_existing_output_is_refused_without_force(tmp_path, png, capsys):
    out = tmp_path / "out.aec"
    out.write_bytes(b"keep me")
    assert run(["encode", str(png), str(out)]) == 1
    err = capsys.readouterr().err
    assert str(out) in err and "-f" in err and err.count("\n") == 1
    assert out.read_bytes() == b"keep me"
    assert run(["encode", str(png), str(out), "-f", "--quiet"]) == 0
    assert out.read_bytes().startswith(MAGIC)


def test_decoding_next_to_the_original_does_not_replace_it(tmp_path, png):
    original = png.read_bytes()
    assert run(["encode", str(png), "--quiet"]) == 0  # photo.aec beside photo.png
    assert run(["decode", str(png.with_suffix(".aec"))]) == 1  # would write photo.png
    assert png.read_bytes() == original


@pytest.mark.parametrize("names", [("s1/pic.png", "s2/pic.png"), ("a.png", "a.jpg")])
def test_colliding_batch_outputs_are_refused_before_any_work(tmp_path, capsys, names):
    inputs = []
    for name in names:
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(photo_like(24, 16), "RGB").save(path)
        inputs.append(str(path))
    out = tmp_path / "out"
    assert run(["encode", *inputs, "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert all(name in err for name in inputs)
    assert not out.exists() or not any(out.iterdir())


def test_an_input_given_twice_is_named_as_such(tmp_path, png, capsys):
    assert run(["encode", str(png), str(tmp_path / "." / png.name), "-o", str(tmp_path)]) == 1
    assert "given twice" in capsys.readouterr().err
    assert not png.with_suffix(".aec").exists()


def test_a_symlinked_output_stays_a_link(tmp_path, png):
    target, link = tmp_path / "target.aec", tmp_path / "link.aec"
    target.write_bytes(b"old")
    link.symlink_to(target)
    assert run(["encode", str(png), str(link), "--quiet"]) == 1  # exists: refused
    assert run(["encode", str(png), str(link), "-f", "--quiet"]) == 0
    assert link.is_symlink() and target.read_bytes().startswith(MAGIC)


def test_a_fifo_output_is_written_through(tmp_path, png):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    try:
        assert run(["encode", str(png), "-o", str(fifo), "--quiet"]) == 0
    finally:
        reader.join(timeout=60)
    assert fifo.is_fifo() and received and received[0].startswith(MAGIC)


def _aec(*args: str, data: bytes) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "neuralcodec", *args], input=data,
                          capture_output=True, env=env, timeout=300)


def test_standard_input_to_standard_output(png):
    encoded = _aec("encode", "-", "-q", "50", data=png.read_bytes())
    assert encoded.returncode == 0, encoded.stderr
    assert encoded.stdout.startswith(MAGIC) and b"bytes" in encoded.stderr
    decoded = _aec("decode", "-", "-o", "-", data=encoded.stdout)
    assert decoded.returncode == 0, decoded.stderr
    assert decoded.stdout.startswith(b"\x89PNG")


def test_binary_output_to_a_terminal_is_refused(png, capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert run(["encode", str(png), "-o", "-"]) == 1
    assert "terminal" in capsys.readouterr().err


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_a_full_device_is_a_failed_file_with_the_os_reason(png, tmp_path):
    """Exit 1 and the OS's reason, not an internal error (exit 2): a device, standard
    output, and a folder that exists but takes no new files."""
    aec = tmp_path / "photo.aec"
    assert run(["encode", str(png), str(aec), "--quiet"]) == 0
    commands = [["encode", str(png), "-o", "/dev/full", "--quiet"],
                ["decode", str(aec), "-o", "-", "--format", "png", "--quiet"],
                ["encode", str(png), "-o", "-", "--quiet"]]
    if os.path.isdir("/proc"):
        commands.append(["encode", str(png), "-o", "/proc/photo.aec", "--quiet"])
    for command in commands:
        with open("/dev/full", "wb") as full:
            done = subprocess.run([sys.executable, "-m", "neuralcodec", *command],
                                  stdout=full, stderr=subprocess.PIPE, text=True)
        lines = done.stderr.splitlines()
        assert done.returncode == 1 and len(lines) == 1, (command, done.stderr)
        assert "internal error" not in lines[0] and "does not exist" not in lines[0]
        assert "No space left" in lines[0] or "/proc" in lines[0], lines[0]


@pytest.fixture(scope="module")
def large_aec(tmp_path_factory) -> Path:
    """An .aec file whose decoded PNG (about 390 kB) is several times a pipe's buffer."""
    folder = tmp_path_factory.mktemp("large")
    png = save_photo(folder / "large.png", 768, 512, seed=1)
    assert run(["encode", str(png), str(folder / "large.aec"), "--quiet"]) == 0
    return folder / "large.aec"


def _reader_gone(args: list[str], keep: int, env: dict | None = None,
                 program: list[str] | None = None) -> tuple[int, bytes]:
    """Run aec with its standard output read for ``keep`` bytes, then closed (as by
    ``| head -c KEEP``); its exit code and standard error."""
    proc = subprocess.Popen([*(program or [sys.executable, "-m", "neuralcodec"]), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})})
    if keep:
        assert len(proc.stdout.read(keep)) == keep
    proc.stdout.close()
    err = proc.stderr.read()
    return proc.wait(timeout=300), err


# Unbuffered standard output (python -u, as in many containers) is where a write that a
# reader cut short used to be ignored: the buffered file returns a short count instead
# of an error.
@pytest.mark.parametrize("unbuffered", ["1", ""])
def test_a_reader_that_goes_away_fails_the_decode(large_aec, unbuffered):
    code, err = _reader_gone(["decode", str(large_aec), "-"], 1000,
                             {"PYTHONUNBUFFERED": unbuffered})
    lines = err.decode().splitlines()
    assert code == 1 and len(lines) == 1, err
    total = int(lines[0].split(" of ")[1].split()[0])
    assert lines[0].startswith(f"aec: error: {large_aec}: standard output: closed after ")
    assert lines[0].endswith(" bytes were written (broken pipe)") and total > 200_000


def test_a_reader_that_goes_away_fails_the_encode_and_text_output(png, large_aec):
    """Every output to a closed pipe fails with one line: the coded file, text (info,
    --help), and output still buffered when the command ends; never click's silent exit
    or Python's 'Exception ignored ... BrokenPipeError' at exit."""
    closed = b"aec: error: standard output: closed before all output was written " \
             b"(broken pipe)\n"
    assert _reader_gone(["info", str(large_aec)], 0) == (1, closed)
    code, err = _reader_gone(["encode", str(png), "-"], 0)
    assert code == 1 and err.startswith(b"aec: error: ") and b"(broken pipe)" in err, err
    assert _reader_gone(["--help"], 0) == (
        1, b"aec: error: output closed before all of it was written (broken pipe)\n")
    code = ("import sys\n"
            "sys.stdout.write('left in the buffer')\n"
            "from _aec_launcher import console_main\n"
            "console_main()\n")
    out = png.with_name("late.aec")
    assert _reader_gone(["encode", str(png), str(out), "--quiet"], 0,
                        {"PYTHONUNBUFFERED": ""}, [sys.executable, "-c", code]) == (1, closed)
    assert out.exists()  # the file was made; the output that did not get out fails it


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_whose_reader_goes_away_fails_the_decode(tmp_path, large_aec, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def read_a_little() -> None:
        with open(fifo, "rb") as f:
            f.read(1000)

    reader = threading.Thread(target=read_a_little, daemon=True)
    reader.start()
    try:
        assert run(["decode", str(large_aec), str(fifo), "--quiet"]) == 1
    finally:
        reader.join(timeout=60)
    assert "(broken pipe)" in capsys.readouterr().err


def test_a_dark_16_bit_image_keeps_its_brightness(tmp_path):
    dark = np.tile(np.arange(0, 256, dtype=np.uint16), (32, 1))[:, :240]  # 0..239 of 65535
    src, aec, back = tmp_path / "dark.png", tmp_path / "dark.aec", tmp_path / "back.png"
    Image.fromarray(dark).save(src)
    assert run(["encode", str(src), str(aec), "-q", "90", "--quiet"]) == 0
    assert run(["decode", str(aec), str(back), "--quiet"]) == 0
    assert np.asarray(Image.open(back)).max() <= 4  # 239 / 257 < 1: black, not grey


def _png16_rgb(path: Path, value: int) -> None:
    w, h = 16, 8
    rows = b"".join(b"\x00" + np.full((w, 3), value, ">u2").tobytes() for _ in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(
            ">I", zlib.crc32(tag + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2,
                                                                       0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_16_bit_colour_is_reduced_with_a_note(tmp_path, capsys):
    src = tmp_path / "deep.png"
    _png16_rgb(src, 40000)
    assert run(["encode", str(src), str(tmp_path / "deep.aec")]) == 0
    assert "16-bit" in capsys.readouterr().err


def test_decoding_to_a_lossy_format_says_so_once_and_takes_a_quality(tmp_path, capsys):
    """JPEG, WebP and AVIF outputs are saved at --output-quality (default 95, not
    Pillow's 75), with one note per run; GIF's palette is noted; WebP at 100 keeps the
    decoded pixels exactly; the option is refused for formats that take none."""
    from neuralcodec import decode

    aecs = []
    for i in range(2):
        png = save_photo(tmp_path / f"p{i}.png", 128, 96, seed=i)
        assert run(["encode", str(png), "--quiet"]) == 0
        aecs.append(png.with_suffix(".aec"))
    decoded = np.asarray(decode(aecs[0]).convert("RGB"), dtype=np.float64)

    def psnr(path: Path) -> float:
        from neuralcodec.metrics import psnr

        return psnr(decoded, np.asarray(Image.open(path).convert("RGB"), dtype=np.float64))

    capsys.readouterr()
    assert run(["decode", *map(str, aecs), "-o", str(tmp_path / "jpg"), "--format", "jpg"]
               ) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "note" in line]
    assert notes == [f"aec: note: {tmp_path / 'jpg' / 'p0.jpg'} and the other outputs: JPEG is "
                     "lossy: saved at quality 95 (--output-quality; PNG, TIFF or WebP at "
                     "quality 100 keep the decoded pixels exactly)"]
    assert psnr(tmp_path / "jpg" / "p0.jpg") > 42  # 45.2 dB; Pillow's default (75) 36.4
    low = tmp_path / "low.jpg"
    assert run(["decode", str(aecs[0]), str(low), "--output-quality", "40"]) == 0
    assert "saved at quality 40" in capsys.readouterr().err
    assert low.stat().st_size < (tmp_path / "jpg" / "p0.jpg").stat().st_size

    exact = tmp_path / "exact.webp"
    assert run(["decode", str(aecs[0]), str(exact), "--output-quality", "100"]) == 0
    assert "note" not in capsys.readouterr().err and psnr(exact) == float("inf")
    assert run(["decode", str(aecs[0]), str(tmp_path / "p.gif")]) == 0
    assert "GIF holds 256 colours" in capsys.readouterr().err
    for lossless in ("q.png", "q.gif", "q.tif"):
        assert run(["decode", str(aecs[0]), str(tmp_path / lossless),
                    "--output-quality", "80"]) == 2
        assert "--output-quality applies to JPEG, WebP and AVIF output, not" in \
            capsys.readouterr().err
        assert not (tmp_path / lossless).exists()


def test_several_frames_are_refused_or_one_is_chosen(tmp_path, capsys):
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]
    frames = [Image.new("RGB", (32, 32), c) for c in colours]
    src = tmp_path / "anim.gif"
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=100)
    aec, back = tmp_path / "anim.aec", tmp_path / "back.png"
    assert run(["encode", str(src), str(aec)]) == 1
    assert "3 frames" in capsys.readouterr().err and not aec.exists()
    assert run(["encode", str(src), str(aec), "--frame", "2", "--quiet"]) == 0
    assert run(["decode", str(aec), str(back), "--quiet"]) == 0
    mean = np.asarray(Image.open(back).convert("RGB"), dtype=float).mean(axis=(0, 1))
    assert mean[2] > 150 and mean[0] < 80


def test_size_and_psnr_targets_are_met(tmp_path, png, capsys):
    small, good = tmp_path / "small.aec", tmp_path / "good.aec"
    assert run(["encode", str(png), str(small), "--size", "300", "--quiet"]) == 0
    assert small.stat().st_size <= 300
    assert run(["encode", str(png), str(good), "--psnr", "30", "-v"]) == 0
    report = capsys.readouterr().out
    assert float(report.split("PSNR ")[1].split(" dB")[0]) >= 30
    back = tmp_path / "back.png"
    assert run(["decode", str(good), str(back), "--quiet"]) == 0
    from neuralcodec.metrics import psnr
    original = np.asarray(Image.open(png).convert("RGB"))
    assert psnr(original, np.asarray(Image.open(back).convert("RGB"))) >= 30


@pytest.mark.parametrize("target, nearest", [(["--bpp", "0.0001"], "smallest file"),
                                             (["--size", "20"], "smallest file"),
                                             # (the default model reaches any PSNR
                                             # with the residual layer)
                                             (["--psnr", "99", "--model", "aec-vq"],
                                              "quality 100 gives")])
def test_an_unreachable_target_fails_and_names_the_nearest(tmp_path, png, capsys, target,
                                                           nearest):
    out = tmp_path / "x.aec"
    assert run(["encode", str(png), str(out), *target]) == 1
    assert nearest in capsys.readouterr().err and not out.exists()


def test_quiet_silences_notes(tmp_path, capsys):
    src = tmp_path / "deep.png"
    _png16_rgb(src, 40000)
    assert run(["encode", str(src), str(tmp_path / "deep.aec"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_thread_counts_give_identical_files(tmp_path, png):
    import torch

    before = torch.get_num_threads()
    try:
        outputs = []
        for n in (1, 2):
            out = tmp_path / f"t{n}.aec"
            assert run(["encode", str(png), str(out), "--threads", str(n), "--quiet"]) == 0
            outputs.append(out.read_bytes())
    finally:
        torch.set_num_threads(before)
    assert outputs[0] == outputs[1]


def test_a_partial_decode_that_recovers_nothing_fails(tmp_path, png, capsys):
    aec, back = tmp_path / "x.aec", tmp_path / "back.png"
    assert run(["encode", str(png), str(aec), "--quiet"]) == 0
    data = bytearray(aec.read_bytes())
    data[-10] ^= 0xFF  # inside the only tile's last chunk (the 7-byte need chunk follows)
    aec.write_bytes(bytes(data))
    assert run(["decode", str(aec), str(back), "--partial"]) == 1
    assert "nothing could be recovered" in capsys.readouterr().err and not back.exists()


def test_ctrl_c_while_the_package_itself_loads_exits_130_without_a_traceback(tmp_path):
    """The installed ``aec`` script's first import must not be inside ``neuralcodec``:
    a package's ``__init__`` runs before anything in it can catch the interrupt."""
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="aec")
    module, attr = script.value.split(":")
    code = (  # what pip's wrapper does, with Ctrl-C landing as the package starts to load
        "import sys\n"
        "class CtrlC:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'neuralcodec':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, CtrlC())\n"
        f"from {module} import {attr}\n"
        f"sys.exit({attr}())\n")
    proc = subprocess.run([sys.executable, "-c", code, "info", "x.aec"], capture_output=True,
                          cwd=tmp_path)
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr == b"aec: error: interrupted\n"


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_ctrl_c_during_start_up_exits_130_without_a_traceback(png):
    import signal
    import time

    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    # SIGINT at its default, as under a terminal: a test run started in the background
    # (`cmd &`) hands its children SIGINT ignored, and Python then never raises it.
    proc = subprocess.Popen([sys.executable, "-m", "neuralcodec", "encode", str(png),
                             str(png.with_suffix(".aec"))], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    maps = Path(f"/proc/{proc.pid}/maps")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # interrupt while NumPy's BLAS loads, in start-up
        try:
            if "openblas" in maps.read_text():
                break
        except OSError:
            pass
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert b"Traceback" not in err and err.strip().endswith(b"interrupted")


def test_the_script_skips_finalization_but_finishes_everything(tmp_path, png):
    """The aec script ends with os._exit (finalization after torch costs ~0.6 s), after
    joining threads, running atexit handlers and flushing output; its exit code stays."""
    code = (  # a library's atexit handler and a late non-daemon thread, then the script
        "import atexit, sys, threading, time\n"
        "from pathlib import Path\n"
        "out = Path(sys.argv.pop(1))\n"
        "atexit.register(lambda: (out / 'atexit').write_text('ran'))\n"
        "def late():\n"
        "    time.sleep(0.5)\n"
        "    (out / 'thread').write_text('done')\n"
        "threading.Thread(target=late).start()\n"
        "from _aec_launcher import console_main\n"
        "console_main()\n")
    aec = tmp_path / "x.aec"

    def script(*args):
        return subprocess.run([sys.executable, "-c", code, str(tmp_path), *args],
                              capture_output=True, cwd=tmp_path)

    proc = script("encode", str(png), str(aec), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "atexit").read_text() == "ran" and (tmp_path / "thread").exists()
    info = script("info", str(aec))
    assert info.returncode == 0 and b"aec-hp-ckbd" in info.stdout  # flushed into the pipe
    missing = script("info", str(tmp_path / "missing.aec"))
    assert missing.returncode == 1 and missing.stderr.strip().startswith(b"aec: error:")
