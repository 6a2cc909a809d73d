"""Hostile input: mutated and random files fail only with AecError, never a crash.

A short seeded pass of benchmarks/fuzz.py (the long run is a benchmark), a hypothesis
property over the container parser, and the committed corpus of interesting cases.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks import fuzz
from neuralcodec.errors import AecError
from neuralcodec.format import container

CORPUS = Path(__file__).resolve().parent / "fuzz_corpus"


@pytest.fixture(scope="module")
def seeds() -> list[bytes]:
    return fuzz.seed_files()


def test_seeded_fuzz_pass_has_no_failures():
    # Generous time limit: CI machines are slow and shared; the benchmark checks 2 s.
    stats = fuzz.run(seed=12345, inputs=400, out=None, max_seconds=30, max_rss_mb=4000)
    assert stats.failures == []
    assert stats.inputs == 400 and stats.deep > 0 and stats.rejected > 0


def test_mutations_reach_every_layer(seeds):
    """The harness is not vacuous: resealed mutations get past the CRCs."""
    rng = random.Random(7)
    outcomes = set()
    for _ in range(300):
        data = fuzz.reseal(fuzz.mutate(rng, seeds))
        try:
            container.unpack(data)
            outcomes.add("parsed")
        except AecError as exc:
            outcomes.add("crc" if "CRC" in str(exc) else "structure")
    assert {"parsed", "structure"} <= outcomes


@settings(max_examples=300, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_are_rejected_cleanly(data):
    with pytest.raises(AecError):
        container.unpack(container.MAGIC + data)


@settings(max_examples=300, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.data())
def test_edited_files_parse_or_fail_with_aec_error(seeds, data):
    original = data.draw(st.sampled_from(seeds))
    edited = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(edited) - 1))
        edited[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(edited)))
    candidate = bytes(edited[:cut])
    if data.draw(st.booleans()):
        candidate = fuzz.reseal(candidate)
    for salvage in (False, True):
        try:
            container.unpack(candidate, salvage=salvage)
        except AecError:
            pass


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.aec")), ids=lambda p: p.name)
def test_corpus_case_decodes_or_fails_cleanly(path):
    codec = fuzz.make_codec()
    data = path.read_bytes()
    assert len(data) < 8192  # corpus files stay tiny
    for partial in (False, True):
        fuzz.check(codec, data, partial)  # anything but AecError propagates and fails
