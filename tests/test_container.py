"""Container parsing: every kind of damage gives one clear AecError, never garbage."""

from __future__ import annotations

import struct
import zlib

import pytest

from neuralcodec import container
from neuralcodec.container import Header
from neuralcodec.errors import AecError, CorruptFileError


def sample_file(**overrides) -> bytes:
    fields = dict(model="aec-hp-ckbd", fingerprint=b"12345678", width=33, height=17,
                  mode="RGB", quality=6000)
    fields.update(overrides)
    chunks = {container.CHUNK_HYPER: b"\x01\x02\x03\x04", container.CHUNK_LATENT: b"\x05" * 8}
    return container.pack(Header(**fields), chunks)


def test_pack_unpack_roundtrip():
    parsed = container.unpack(sample_file())
    h = parsed.header
    assert (h.model, h.width, h.height, h.mode, h.quality_value) == ("aec-hp-ckbd", 33, 17,
                                                                      "RGB", 60.0)
    assert parsed.chunks[container.CHUNK_LATENT] == b"\x05" * 8


def test_header_is_little_endian_and_versioned():
    data = sample_file()
    assert data[:8] == container.MAGIC
    assert struct.unpack_from("<H", data, 8)[0] == container.VERSION


@pytest.mark.parametrize("data", [b"", b"\x89AE", b"GIF89a....", b"\x00" * 100])
def test_not_an_aec_file(data):
    with pytest.raises(CorruptFileError, match="not an .aec file"):
        container.unpack(data)


def test_every_truncation_is_detected():
    data = sample_file()
    for cut in range(len(data)):
        with pytest.raises(CorruptFileError):
            container.unpack(data[:cut])


def test_every_single_bit_flip_is_detected():
    data = sample_file()
    for pos in range(len(data)):
        for bit in (0, 7):
            damaged = bytearray(data)
            damaged[pos] ^= 1 << bit
            # A flip that turns a chunk tag into an ancillary one drops that chunk; the
            # model family then reports its required chunk as missing.
            with pytest.raises(AecError):
                chunks = container.unpack(bytes(damaged)).chunks
                for required in (container.CHUNK_HYPER, container.CHUNK_LATENT):
                    if required not in chunks:
                        raise CorruptFileError("required chunk missing")


def test_chunk_crc_mismatch_names_the_chunk():
    data = bytearray(sample_file())
    data[-1] ^= 0xFF  # last byte of the LATN payload
    with pytest.raises(CorruptFileError, match="CRC mismatch in chunk LATN"):
        container.unpack(bytes(data))


def test_unknown_version_says_so():
    data = bytearray(sample_file())
    struct.pack_into("<H", data, 8, 99)
    with pytest.raises(AecError, match="version 99"):
        container.unpack(bytes(data))


def test_trailing_bytes_are_rejected():
    with pytest.raises(CorruptFileError, match="unexpected bytes"):
        container.unpack(sample_file() + b"x")


def _with_extra_chunk(tag: bytes) -> bytes:
    data = bytearray(sample_file())
    header, header_len, n = container.parse_header(bytes(data))
    body = bytes(data[:header_len - 5]) + bytes([n + 1])
    head = body
    rest = bytes(data[header_len:])
    payload = b"future"
    extra = struct.pack("<4sII", tag, len(payload), zlib.crc32(payload)) + payload
    return head + struct.pack("<I", zlib.crc32(head)) + rest + extra


def test_unknown_ancillary_chunk_is_skipped_but_critical_is_not():
    assert container.unpack(_with_extra_chunk(b"xtra")).header.width == 33
    with pytest.raises(CorruptFileError, match="unknown critical chunk XTRA"):
        container.unpack(_with_extra_chunk(b"XTRA"))


def test_quality_validation():
    with pytest.raises(AecError):
        container.quantize_quality(100.5)
    assert container.quantize_quality(33.333) == 3333
