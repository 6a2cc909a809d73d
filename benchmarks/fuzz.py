"""Fuzz the .aec parser and decoder with mutated valid files and random bytes.

Every input must either decode or fail with aec's own error type (AecError); anything
else (another exception, a run over --max-seconds per input, memory beyond --max-rss-mb)
is a failure and is written to OUT/failures/. Time is the process's CPU time per
input: wall time on a shared machine measures the other jobs (it is reported too).
Inputs that reach the model family's decoder with a new kind of outcome are kept in
OUT/corpus/ (candidates for tests/fuzz_corpus/).

Mutations: bit flips, byte overwrites, truncations, inserted/deleted/duplicated ranges,
interesting values (0, 1, 2^16-1, 2^20, 2^32-1, ...) written into 1/2/4-byte fields such
as lengths, sizes, counts and tile indices, splices of two files, and pure random bytes.
Some mutated inputs (RESEAL_SHARE) are *resealed*: their CRCs are recomputed, as a crafted file
would have, so that mutations get past the CRC checks into the header validation, the
directory, the entropy decoder and the synthesis.

    python benchmarks/fuzz.py --inputs 1000000 --jobs 2 --out /tmp/fuzz   # the long run
    python benchmarks/fuzz.py --inputs 2000 --jobs 1                      # a quick pass

tests/test_fuzz.py runs a short seeded pass of the same harness in CI.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import random
import resource
import struct
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._report import print_and_save  # noqa: E402
from neuralcodec import Codec  # noqa: E402
from neuralcodec.errors import AecError  # noqa: E402
from neuralcodec.format import container  # noqa: E402

# Small limits keep each deep decode fast; the checks they exercise are the same.
FUZZ_MAX_PIXELS = 192 * 192
FUZZ_MAX_TILE_PIXELS = 128 * 128
# Shares of inputs that are resealed / decoded with decode_partial. Those are the ones
# that reach the model's decoder (about 30 ms each, against 0.1 ms for the rest), so
# they are kept small enough for a million inputs to run in minutes.
RESEAL_SHARE = 0.01
PARTIAL_SHARE = 0.03
INTERESTING = (0, 1, 2, 3, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0xFFFF, 0x10000, 1 << 20,
               (1 << 20) + 1, 0x7FFFFFFF, 0xFFFFFFFF)


def _image(width: int, height: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = 128 + 90 * np.sin(xx / 9.0 + seed) * np.cos(yy / 7.0)
    img = np.stack([base, base[::-1], 255 - base], -1) + rng.normal(0, 6, (height, width, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def seed_files() -> list[bytes]:
    """Small valid files of every version, mode and a multi-tile layout."""
    seeds = []
    rgb = Image.fromarray(_image(80, 72, 1), "RGB")
    tiled = Codec(device="cpu", tile_size=64, workers=1)
    seeds.append(tiled.encode(rgb, 70))  # 4 tiles
    rgba = rgb.copy()
    rgba.putalpha(Image.fromarray(_image(80, 72, 2)[..., 0], "L"))
    seeds.append(tiled.encode(rgba, 40))
    gray = Image.fromarray(_image(48, 40, 3)[..., 1], "L")
    gray.info["icc_profile"] = b"\x00" * 40
    seeds.append(Codec(device="cpu", workers=1).encode(gray, 90))
    for version in (1, 2):
        seeds.append(Codec(device="cpu", format_version=version).encode(rgb.crop((0, 0, 40, 24)),
                                                                        60))
    # The overfitted family's chunks (OFPR, OFLT) in 4 tiles with alpha: a fit of a few
    # iterations makes a valid file, which is all a seed needs.
    from neuralcodec.families.overfitted.coder import ITERATIONS_ENV

    before = os.environ.get(ITERATIONS_ENV)
    os.environ[ITERATIONS_ENV] = "5"
    try:
        overfitted = Codec(model="aec-of", device="cpu", tile_size=64, workers=1)
        seeds.append(overfitted.encode(rgba, 60))
    finally:
        if before is None:
            del os.environ[ITERATIONS_ENV]
        else:
            os.environ[ITERATIONS_ENV] = before
    return seeds


def reseal(data: bytes) -> bytes:
    """Recompute every CRC that the (possibly mutated) structure still lets us find."""
    out = bytearray(data)
    if len(out) < 12 or not container.is_aec(out):
        return bytes(out)
    version, header_len = struct.unpack_from("<HH", out, 8)
    if not 12 <= header_len <= len(out):
        return bytes(out)
    struct.pack_into("<I", out, header_len - 4, zlib.crc32(out[: header_len - 4]))
    if version >= container.TILED_VERSION:
        if len(out) < header_len + 4:
            return bytes(out)
        (n,) = struct.unpack_from("<I", out, header_len)
        end = header_len + 4 + 16 * n
        if end + 4 > len(out):
            return bytes(out)
        offset = end + 4
        for k in range(n):
            entry = header_len + 4 + 16 * k
            length = struct.unpack_from("<I", out, entry + 8)[0]
            if offset + length <= len(out):
                struct.pack_into("<I", out, entry + 12, zlib.crc32(out[offset:offset + length]))
            offset += length
        struct.pack_into("<I", out, end, zlib.crc32(out[header_len:end]))
    else:
        pos, count = header_len, out[header_len - 5] if header_len >= 5 else 0
        for _ in range(count):
            if pos + 12 > len(out):
                break
            length = struct.unpack_from("<I", out, pos + 4)[0]
            payload = out[pos + 12 : pos + 12 + length]
            struct.pack_into("<I", out, pos + 8, zlib.crc32(payload))
            pos += 12 + length
    return bytes(out)


def mutate(rng: random.Random, seeds: list[bytes]) -> bytes:
    """One fuzz input."""
    if rng.random() < 0.05:
        return rng.randbytes(rng.randrange(0, 200))
    data = bytearray(rng.choice(seeds))
    for _ in range(rng.choice((1, 1, 1, 2, 3, 8))):
        op = rng.randrange(8)
        n = len(data)
        pos = rng.randrange(n) if n else 0
        if op == 0 and n:  # bit flip
            data[pos] ^= 1 << rng.randrange(8)
        elif op == 1 and n:  # random byte
            data[pos] = rng.randrange(256)
        elif op == 2:  # truncate
            del data[rng.randrange(n + 1):]
        elif op == 3:  # insert bytes
            data[pos:pos] = rng.randbytes(rng.choice((1, 4, 16, rng.randrange(1, 64))))
        elif op == 4 and n:  # delete a range
            del data[pos:pos + rng.randrange(1, 32)]
        elif op == 5 and n:  # duplicate a range
            data[pos:pos] = data[pos:pos + rng.randrange(1, 64)]
        elif op == 6 and n > 4:  # an interesting value in a 1/2/4-byte field
            size = rng.choice((1, 2, 4))
            pos = rng.randrange(max(1, n - size))
            value = rng.choice(INTERESTING) & ((1 << (8 * size)) - 1)
            data[pos:pos + size] = value.to_bytes(size, "little")
        elif op == 7:  # splice with another seed
            other = rng.choice(seeds)
            cut = rng.randrange(len(other))
            data = data[:pos] + other[cut:]
    data = bytes(data)
    return reseal(data) if rng.random() < RESEAL_SHARE else data


@dataclass
class Stats:
    inputs: int = 0
    decoded: int = 0  # decoded without error
    rejected: int = 0  # AecError
    # Parsed when damaged payloads are dropped (salvage): the strict decoder may still
    # reject them at a chunk CRC; inputs that ran the model decoder are "decoded" plus
    # those rejected by it (stream, escape and missing-chunk errors).
    deep: int = 0
    failures: list[dict] = field(default_factory=list)
    max_seconds: float = 0.0  # CPU seconds of the slowest input (the hang criterion)
    max_wall_seconds: float = 0.0  # wall clock, which a shared machine inflates
    slowest_sha: str = ""
    outcomes: dict[str, int] = field(default_factory=dict)  # first words of each error


def make_codec() -> Codec:
    return Codec(device="cpu", max_pixels=FUZZ_MAX_PIXELS, max_tile_pixels=FUZZ_MAX_TILE_PIXELS,
                 workers=1)


def check(codec: Codec, data: bytes, partial: bool) -> str:
    """Decode one input; returns the outcome ('ok' or the AecError's message). Any other
    exception propagates: that is a failure."""
    try:
        if partial:
            codec.decode_partial(data)
        else:
            codec.decode(data)
    except AecError as exc:
        return str(exc)
    return "ok"


def _outcome_key(outcome: str) -> str:
    """Error messages without numbers and names from the file: one key per kind."""
    words = outcome.split()[:6]
    return " ".join(w for w in words if w.isalpha() or w in ("HYPR", "LATN", "ESCP", "ALPH", "OFPR",
                                                                  "OFLT"))


def run(seed: int, inputs: int, out: Path | None, max_seconds: float, max_rss_mb: int,
        report_every: int = 0) -> Stats:
    import torch

    torch.set_num_threads(1)
    codec = make_codec()
    seeds = seed_files()
    for data in seeds:  # one-time set-up (tables, parameter paths) is not per-input cost
        for partial in (False, True):
            check(codec, data, partial)
    rng = random.Random(seed)
    stats = Stats()
    for k in range(inputs):
        data = mutate(rng, seeds)
        partial = rng.random() < PARTIAL_SHARE
        t0, cpu0 = time.perf_counter(), time.process_time()
        try:
            outcome = check(codec, data, partial)
        except Exception as exc:  # anything but AecError is a bug
            outcome = None
            failure = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        else:
            failure = None
        seconds = time.process_time() - cpu0
        stats.max_wall_seconds = max(stats.max_wall_seconds, time.perf_counter() - t0)
        stats.inputs += 1
        if seconds > stats.max_seconds:
            stats.max_seconds = seconds
            stats.slowest_sha = hashlib.sha256(data).hexdigest()[:16]
        if failure is None and seconds > max_seconds:
            failure = {"error": f"took {seconds:.2f} CPU seconds"}
        if failure is not None:
            failure.update(sha=hashlib.sha256(data).hexdigest()[:16], partial=partial)
            stats.failures.append(failure)
            _save(out, "failures", data, failure["sha"])
            continue
        if outcome == "ok":
            stats.decoded += 1
        else:
            stats.rejected += 1
        key = "ok" if outcome == "ok" else _outcome_key(outcome)
        deep = _reached_family(data)
        stats.deep += deep
        if key not in stats.outcomes and deep:
            _save(out, "corpus", data, f"{len(stats.outcomes):03d}")
        stats.outcomes[key] = stats.outcomes.get(key, 0) + 1
        if report_every and (k + 1) % report_every == 0:
            print(f"[seed {seed}] {k + 1} inputs, max {stats.max_seconds:.3f} CPU s, "
                  f"{stats.max_wall_seconds:.3f} wall s, "
                  f"rss {_rss_mb():.0f} MB, {len(stats.failures)} failures", flush=True)
        if _rss_mb() > max_rss_mb:
            stats.failures.append({"error": f"peak RSS {_rss_mb():.0f} MB > {max_rss_mb} MB",
                                   "sha": hashlib.sha256(data).hexdigest()[:16]})
            _save(out, "failures", data, "rss")
            break
    return stats


def _reached_family(data: bytes) -> bool:
    try:
        container.unpack(data, salvage=True)
    except AecError:
        return False
    return True


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _save(out: Path | None, kind: str, data: bytes, name: str) -> None:
    if out is not None:
        (out / kind).mkdir(parents=True, exist_ok=True)
        (out / kind / f"{name}.aec").write_bytes(data)


def _shard(args: tuple) -> dict:
    seed, inputs, out, max_seconds, max_rss_mb = args
    t0 = time.perf_counter()
    stats = run(seed, inputs, out / f"seed{seed}" if out else None, max_seconds, max_rss_mb,
                report_every=100_000)
    return {**stats.__dict__, "seed": seed, "seconds": time.perf_counter() - t0,
            "peak_rss_mb": _rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=2, help="processes (seeds seed..seed+jobs-1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=2.0)
    parser.add_argument("--max-rss-mb", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the summary here")
    args = parser.parse_args()
    per_job = -(-args.inputs // args.jobs)
    shards = [(args.seed + j, per_job, args.out, args.max_seconds, args.max_rss_mb)
              for j in range(args.jobs)]
    t0 = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        results = pool.map(_shard, shards)
    outcomes: dict[str, int] = {}
    for r in results:
        for key, count in r["outcomes"].items():
            outcomes[key] = outcomes.get(key, 0) + count
    summary = {
        "command": " ".join(sys.argv),
        "inputs": sum(r["inputs"] for r in results),
        "failures": [f for r in results for f in r["failures"]],
        "decoded": sum(r["decoded"] for r in results),
        "rejected_with_aec_error": sum(r["rejected"] for r in results),
        "reached_model_decoder": sum(r["deep"] for r in results),
        "max_cpu_seconds_per_input": max(r["max_seconds"] for r in results),
        "max_wall_seconds_per_input": max(r["max_wall_seconds"] for r in results),
        "peak_rss_mb_per_process": max(r["peak_rss_mb"] for r in results),
        "wall_seconds": time.perf_counter() - t0,
        "limits": {"max_pixels": FUZZ_MAX_PIXELS, "max_tile_pixels": FUZZ_MAX_TILE_PIXELS},
        "outcomes": dict(sorted(outcomes.items(), key=lambda kv: -kv[1])),
    }
    print_and_save(summary, args.json)
    sys.exit(1 if summary["failures"] else 0)


if __name__ == "__main__":
    main()
