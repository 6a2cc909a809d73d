"""Data-set runs (neuralcodec.datasets): mirrored outputs, the manifest, resuming, a
killed Ray worker, bad inputs, and the one-line error without Ray.

The Ray tests share one local cluster (2 CPUs, on the loopback address) and skip where
Ray is not installed; the local-engine tests always run.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from neuralcodec.cli import run
from neuralcodec.datasets import decode_dataset, encode_dataset
from neuralcodec.errors import AecError

from .helpers import save_photo

ROOT = Path(__file__).resolve().parent.parent
SIZE = (48, 40)


def make_tree(root: Path) -> tuple[Path, list[Path]]:
    """50 inputs: the same stems in several folders (PNG and JPEG), one nested, and one
    truncated PNG. Returns the tree and its good images."""
    good = []
    for i, folder in enumerate(("a", "b", "b/deep", "c")):
        (root / folder).mkdir(parents=True)
        for j in range(12):
            suffix = ".jpg" if folder == "c" else ".png"
            good.append(save_photo(root / folder / f"img{j:02d}{suffix}", *SIZE,
                                   seed=100 * i + j))
    good.append(save_photo(root / "img00.png", *SIZE, seed=999))
    whole = (root / "a" / "img00.png").read_bytes()
    (root / "b" / "broken.png").write_bytes(whole[:len(whole) // 2])
    (root / "notes.txt").write_text("not an image: left out of the walk")
    return root, sorted(good)


def output_of(tree: Path, out: Path, src: Path, suffix: str = ".aec") -> Path:
    return out / src.relative_to(tree).with_suffix(suffix)


def manifest(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "manifest.csv", newline="") as f:
        return {row["output"]: row for row in csv.DictReader(f)}


def check_outputs(tree: Path, out: Path, good: list[Path], codec) -> None:
    """Every good input has a complete output that decodes to its size."""
    for src in good:
        image = codec.decode(output_of(tree, out, src))
        assert image.size == SIZE, src
    assert not list(out.rglob("*.part"))
    assert not (out / "b" / "broken.aec").exists()


# -- the local engine (no Ray needed) ---------------------------------------------------


def test_local_engine_mirrors_folders_and_resumes(tmp_path, codec, capsys):
    src = tmp_path / "src"
    for seed, folder in enumerate(("x", "y")):
        (src / folder).mkdir(parents=True)
        save_photo(src / folder / "same.png", *SIZE, seed=seed)
    save_photo(src / "top.png", *SIZE, seed=7)
    out = tmp_path / "out"
    # Without --recursive only the folder's own files; a folder input alone selects the
    # data-set planner with the default (local) engine.
    assert run(["encode", str(src), "-o", str(out), "-q", "30"]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.aec")) == ["top.aec"]
    assert run(["encode", str(src), "-r", "-o", str(out), "-q", "30"]) == 0
    assert "3 files: 2 coded, 1 skipped, 0 failed" in capsys.readouterr().out
    a, b = (out / "x" / "same.aec").read_bytes(), (out / "y" / "same.aec").read_bytes()
    assert a != b  # equal stems, different folders, both kept
    rows = manifest(out)
    assert rows["x/same.aec"]["status"] == "done" and rows["top.aec"]["status"] == "skipped"
    assert rows["x/same.aec"]["bytes"] == str(len(a)) and rows["x/same.aec"]["quality"] == "30"
    back = tmp_path / "back"
    assert run(["decode", str(out), "-r", "-o", str(back), "--quiet"]) == 0
    assert Image.open(back / "y" / "same.png").size == SIZE
    assert sorted(p.relative_to(back).as_posix() for p in back.rglob("*.png")) == [
        "top.png", "x/same.png", "y/same.png"]
    assert codec.decode(a).tobytes() == Image.open(back / "x" / "same.png").tobytes()


def test_files_from_mirrors_relative_to_the_common_folder(tmp_path, monkeypatch):
    for folder in ("p", "q"):
        (tmp_path / folder).mkdir()
        save_photo(tmp_path / folder / "im.png", *SIZE)
    listing = tmp_path / "list.txt"
    listing.write_text(f"{tmp_path / 'p' / 'im.png'}\n\n{tmp_path / 'q' / 'im.png'}\n")
    out = tmp_path / "out"
    summary = encode_dataset([], out, files_from=listing, quality=20)
    assert (summary.files, summary.done) == (2, 2)
    assert (out / "p" / "im.aec").exists() and (out / "q" / "im.aec").exists()
    # The same list on standard input, through the command line: all skipped.
    monkeypatch.setattr(sys, "stdin", io.StringIO(listing.read_text()))
    assert run(["encode", "--files-from", "-", "-o", str(out), "-q", "20", "--quiet"]) == 0
    assert {row["status"] for row in manifest(out).values()} == {"skipped"}


def test_colliding_outputs_are_refused_before_any_work(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    save_photo(src / "pic.png", *SIZE)
    save_photo(src / "pic.jpg", *SIZE)
    out = tmp_path / "out"
    assert run(["encode", str(src), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "would both be written to" in err and "pic.jpg" in err
    assert not out.exists()


def test_existing_outputs_are_never_replaced_unasked(tmp_path, codec):
    src = tmp_path / "src"
    src.mkdir()
    save_photo(src / "one.png", *SIZE, seed=1)
    save_photo(src / "two.png", *SIZE, seed=2)
    out = tmp_path / "out"
    out.mkdir()
    (out / "one.aec").write_bytes(b"something else")
    summary = encode_dataset(src, out, quality=20)
    assert (summary.done, summary.failed) == (1, 1)
    assert "not a valid .aec file" in summary.failures[0].error
    assert (out / "one.aec").read_bytes() == b"something else"
    # Another quality is not what was asked: refused too, and replaced with force.
    summary = encode_dataset(src, out, quality=40, force=True)
    assert (summary.done, summary.skipped, summary.failed) == (2, 0, 0)
    assert codec.decode(out / "one.aec").size == SIZE
    # A manifest.csv that is not aec's is not replaced.
    other = tmp_path / "other"
    other.mkdir()
    (other / "manifest.csv").write_text("mine\n")
    with pytest.raises(AecError, match="not an aec manifest"):
        encode_dataset(src, other)
    assert (other / "manifest.csv").read_text() == "mine\n"


def test_a_data_set_decoded_to_a_lossy_format_gets_one_note(tmp_path):
    from neuralcodec import AecWarning

    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        save_photo(src / f"{i}.png", *SIZE, seed=i)
    encode_dataset(src, tmp_path / "aec")
    with pytest.raises(AecError, match="output_quality applies to JPEG, WebP and AVIF"):
        decode_dataset(tmp_path / "aec", tmp_path / "png", output_quality=80)
    assert not (tmp_path / "png").exists()  # refused before any work
    with pytest.warns(AecWarning) as notes:
        summary = decode_dataset(tmp_path / "aec", tmp_path / "webp", fmt="webp",
                                 output_quality=70)
    assert summary.done == 3
    assert [str(n.message) for n in notes] == [
        f"{tmp_path / 'webp'}: WebP is lossy: saved at quality 70 (output_quality; PNG, "
        "TIFF or WebP at quality 100 keep the decoded pixels exactly)"]


def test_without_ray_the_ray_engine_is_one_line(tmp_path):
    save_photo(tmp_path / "im.png", *SIZE)
    script = ("import sys\nsys.modules['ray'] = None\nfrom neuralcodec.cli import run\n"
              f"sys.exit(run(['encode', {str(tmp_path)!r}, '-o', {str(tmp_path / 'out')!r}, "
              "'--engine', 'ray']))")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 1
    assert proc.stderr == "aec: error: --engine ray needs Ray: pip install 'neuralcodec[ray]'\n"
    assert not (tmp_path / "out").exists()


def test_the_dataset_api_and_help_import_no_ray_nor_torch():
    script = ("import sys, neuralcodec.datasets\nfrom neuralcodec.cli import run\n"
              "assert run(['encode', '--help']) == 0\n"
              "print(' '.join(m for m in sys.modules if m.split('.')[0] in ('ray', 'torch')))")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    assert proc.stdout.splitlines()[-1] == ""


# -- the Ray engine ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster():
    """One local cluster for the module: 2 CPUs, on 127.0.0.1 (Ray otherwise binds the
    host's address)."""
    saved = os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # read when Ray is imported
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING)
    yield ray
    ray.shutdown()
    if saved is None:
        os.environ.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
    else:
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = saved


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_tree(tmp_path_factory.mktemp("tree"))


@pytest.fixture(scope="module")
def encoded(ray_cluster, tree, tmp_path_factory):
    """The tree encoded by `aec encode --engine ray`: (output folder, exit code, stderr,
    the manifest's rows as that run left them)."""
    root, _ = tree
    out = tmp_path_factory.mktemp("enc") / "out"
    rc, err = _run_capturing(["encode", str(root), "-r", "-o", str(out), "--engine", "ray",
                              "--workers", "2", "-q", "40", "-v"])
    return out, rc, err, manifest(out)


def _run_capturing(args: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = run(args)
    return rc, err.getvalue()


def test_ray_codes_a_tree_with_colliding_stems(encoded, tree, codec):
    out, _, _, rows = encoded
    root, good = tree
    check_outputs(root, out, good, codec)
    assert len(rows) == 50 and len(good) == 49
    for src in good:
        row = rows[output_of(root, out, src).relative_to(out).as_posix()]
        assert row["status"] == "done" and row["input"] == str(src)
        assert (row["width"], row["height"], row["quality"]) == ("48", "40", "40")
        assert int(row["bytes"]) == output_of(root, out, src).stat().st_size
        assert float(row["psnr"]) > 20
    same = [output_of(root, out, root / f / "img03.png").read_bytes() for f in ("a", "b")]
    assert same[0] != same[1]


def test_ray_lists_a_corrupt_input_as_failed(encoded):
    out, rc, err, rows = encoded
    row = rows["b/broken.aec"]
    assert row["status"] == "failed" and "cannot read image" in row["error"]
    assert rc == 1
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("aec: error: 1 of 50 files failed")
    assert "broken.png" in lines[0]


def test_ray_rerun_recomputes_nothing(encoded, tree):
    out, _, _, first = encoded
    root, _ = tree
    before = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in out.rglob("*.aec")}
    measured = {k: r["psnr"] for k, r in first.items()}
    rc, _ = _run_capturing(["encode", str(root), "-r", "-o", str(out), "--engine", "ray",
                            "--workers", "2", "-q", "40"])
    assert rc == 1
    rows = manifest(out)
    assert sorted(r["status"] for r in rows.values()) == ["failed"] + ["skipped"] * 49
    assert {k: r["psnr"] for k, r in rows.items()} == measured  # kept from the first run
    assert {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in out.rglob("*.aec")} == before


def test_ray_decodes_the_tree(encoded, tree, tmp_path, codec):
    out = encoded[0]
    back = tmp_path / "back"
    summary = decode_dataset([out], back, engine="ray", recursive=True, workers=2)
    assert (summary.done, summary.failed) == (49, 0)
    for aec in out.rglob("*.aec"):
        png = back / aec.relative_to(out).with_suffix(".png")
        assert Image.open(png).size == SIZE
        if aec.parent.name == "a":  # the same pixels as decoding here
            assert Image.open(png).tobytes() == codec.decode(aec).tobytes()


def _busy_workers() -> list[int]:
    """Ray worker processes running a task of an aec actor (their title is
    ``ray::Worker.run`` while they do)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if title.startswith(b"ray::Worker.run"):
            found.append(int(pid))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds workers through /proc")
def test_ray_retries_the_task_of_a_killed_worker(ray_cluster, tree, tmp_path, codec):
    root, good = tree
    out = tmp_path / "out"
    killed = []

    def kill_one(done: int, total: int) -> None:
        if done and not killed:
            for pid in _busy_workers()[:1]:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    summary = encode_dataset([root], out, engine="ray", recursive=True, workers=2,
                             task_size=4, quality=40, progress=kill_one)
    assert killed, "no worker was busy when tasks finished"
    assert (summary.files, summary.failed) == (50, 1)
    assert summary.done + summary.skipped == 49
    check_outputs(root, out, good, codec)
    assert len(manifest(out)) == 50
