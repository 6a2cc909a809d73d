"""Files written by one aec checkout decode identically with another.

Encodes the golden-file cases (tests/golden/make_golden.py: RGB, L, LA, RGBA, odd
sizes, several tiles, effort 2, format versions 1-3, per model where its family writes
them) with the ``--writer`` checkout's package, decodes each file with the writer and
with the ``--reader`` checkout's, and compares every tile's latents and the pixels:

    git worktree add ../v010 34f586b    # 0.1.0 (tag v0.1.0)
    python benchmarks/compat_check.py --writer ../v010 --reader .     # 0.1.0 -> this
    python benchmarks/compat_check.py --writer . --reader ../v010     # this -> 0.1.0

Each side runs in its own process with only its checkout on PYTHONPATH (the case list
and the checksums are this script's and make_golden.py's, which use only the 0.1.0
API). Exits 1 if any latents differ or any pixel differs by more than ``--tolerance``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ["aec-hp-ckbd", "aec-vq"]


def _golden():
    """make_golden from this script's checkout, by its path (PYTHONPATH's checkout has
    its own ``tests``); the package it uses stays PYTHONPATH's."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_golden", ROOT / "tests" / "golden" / "make_golden.py")
    module = sys.modules["make_golden"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _side(role: str, checkout: Path, folder: Path, models: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout.resolve())}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--role", role, "--folder",
           str(folder), "--models", ",".join(models)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{role} in {checkout} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def _decoded(make_golden, codec, data: bytes, pixels_path: Path) -> dict:
    import numpy as np

    latents = make_golden.latent_checksum(make_golden.decoded_latents(codec, data))
    image = codec.decode(data)
    np.save(pixels_path, np.asarray(image))
    return {"latents": latents, "pixels": make_golden.pixel_checksum(image)}


def write(folder: Path, models: list[str]) -> dict:
    """Encode every case with this process's package (the writer's), and decode it."""
    import neuralcodec
    from neuralcodec import Codec

    make_golden = _golden()
    files = {}
    for model in models:
        decoder = Codec(model=model, device="cpu", workers=1).load()
        for case in make_golden.CASES:
            if not make_golden.writable(case, decoder.coder()):
                continue
            name = make_golden.golden_name(case, model)
            data = make_golden.encode_case(case, model)
            (folder / name).write_bytes(data)
            files[name] = {"model": model, "bytes": len(data),
                           **_decoded(make_golden, decoder, data,
                                      folder / f"{name}.writer.npy")}
    return {"package": neuralcodec.__file__, "version": neuralcodec.__version__,
            "files": files}


def read(folder: Path, models: list[str]) -> dict:
    """Decode every written file with this process's package (the reader's)."""
    import neuralcodec
    from neuralcodec import Codec

    make_golden = _golden()
    codecs = {model: Codec(model=model, device="cpu", workers=1) for model in models}
    written = json.loads((folder / "written.json").read_text())["files"]
    files = {name: _decoded(make_golden, codecs[entry["model"]], (folder / name).read_bytes(),
                            folder / f"{name}.reader.npy")
             for name, entry in written.items()}
    return {"package": neuralcodec.__file__, "version": neuralcodec.__version__,
            "files": files}


def compare(folder: Path, written: dict, decoded: dict, tolerance: int) -> bool:
    import numpy as np

    ok = True
    worst = 0
    for name, entry in written["files"].items():
        got = decoded["files"][name]
        a = np.load(folder / f"{name}.writer.npy").astype(np.int16)
        b = np.load(folder / f"{name}.reader.npy").astype(np.int16)
        diff = int(np.abs(a - b).max()) if a.shape == b.shape else 999
        worst = max(worst, diff)
        same_latents = got["latents"] == entry["latents"]
        ok &= same_latents and diff <= tolerance
        print(f"{name:34s} {entry['bytes']:5d} B  latents "
              f"{'identical' if same_latents else 'DIFFER'}, pixels "
              f"{'identical' if got['pixels'] == entry['pixels'] else f'max diff {diff}'}")
    print(f"{len(written['files'])} files; largest pixel difference {worst}; "
          f"{'all decode identically' if ok else 'SOME DIFFER'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writer", type=Path, help="checkout whose package encodes")
    parser.add_argument("--reader", type=Path, help="checkout whose package decodes")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--tolerance", type=int, default=0,
                        help="largest pixel difference accepted (levels of 255)")
    parser.add_argument("--role", choices=["write", "read"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    models = args.models.split(",")
    if args.role == "write":
        print(json.dumps(write(args.folder, models)))
        return
    if args.role == "read":
        print(json.dumps(read(args.folder, models)))
        return
    if args.writer is None or args.reader is None:
        parser.error("give --writer and --reader")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        written = _side("write", args.writer, folder, models)
        (folder / "written.json").write_text(json.dumps(written))
        decoded = _side("read", args.reader, folder, models)
        print(f"writer: aec {written['version']} ({written['package']})")
        print(f"reader: aec {decoded['version']} ({decoded['package']})")
        sys.exit(0 if compare(folder, written, decoded, args.tolerance) else 1)


if __name__ == "__main__":
    main()
