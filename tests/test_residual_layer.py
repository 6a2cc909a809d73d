"""The residual layer in files and on the command line (issue 41): ``--lossless`` decodes
to the input, ``--max-error K`` within K, the same pixels on every thread count and
backend, usage errors, refusals, damage, and what a release without the layer says.

The residual model here is a small random one (``ResidualCodec.from_arrays``): round
trips are exact whatever its weights, so these tests do not need the shipped model."""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest
from PIL import Image

import neuralcodec
from neuralcodec import Codec, EncodeOptions
from neuralcodec.cli import run
from neuralcodec.codec import residual_layer
from neuralcodec.codec.residual_layer import residual_layer_here
from neuralcodec.errors import AecError, CorruptFileError
from neuralcodec.format import container
from neuralcodec.format.inspect import describe
from neuralcodec.format.residual import ResidualChunk
from neuralcodec.residual.layer import ResidualCodec, export_arrays

from .helpers import photo_like, threads, torch_coder
from .test_residual_codec import float_model
from .test_safety import _png16_rgb

RESD = b"RESD"


def random_residual_model(seed: int = 0, hidden: int = 8) -> ResidualCodec:
    """An exact residual model of the shipped design with small random weights."""
    return ResidualCodec.from_arrays(export_arrays(float_model(seed, hidden)), "test-residual")


@pytest.fixture(scope="module")
def model() -> ResidualCodec:
    return random_residual_model()


@pytest.fixture(autouse=True)
def use_model(model, monkeypatch):
    """Every residual layer coded and decoded in this process uses the test model."""
    monkeypatch.setattr(residual_layer, "residual_model", lambda name=None: model)


@pytest.fixture(scope="module")
def rcodec() -> Codec:
    return Codec(device="cpu", workers=1).load()


def image(mode: str, width: int = 37, height: int = 23, seed: int = 1) -> Image.Image:
    rgb = photo_like(width, height, seed)
    if mode in ("L", "LA"):
        out = Image.fromarray(rgb, "RGB").convert("L")
    else:
        out = Image.fromarray(rgb, "RGB")
    if "A" in mode:
        alpha = np.random.default_rng(seed).integers(0, 256, (height, width), np.uint8)
        out = out.convert(mode)
        out.putalpha(Image.fromarray(alpha, "L"))
    return out


def largest_error(a: Image.Image, b: Image.Image) -> int:
    assert a.mode == b.mode and a.size == b.size
    return int(np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max())


@pytest.mark.parametrize("mode", ["RGB", "L", "LA", "RGBA"])
def test_lossless_decodes_to_the_exact_input(tmp_path, mode, capsys):
    src = tmp_path / "in.png"
    image(mode).save(src)
    assert run(["encode", str(src), str(tmp_path / "x.aec"), "--lossless", "-v"]) == 0
    line = capsys.readouterr().out
    assert "+ residual K=0" in line and "PSNR inf dB, max error 0" in line
    assert run(["decode", str(tmp_path / "x.aec"), str(tmp_path / "out.png")]) == 0
    out = Image.open(tmp_path / "out.png")
    assert out.mode == mode
    assert np.array_equal(np.asarray(out), np.asarray(Image.open(src)))


def test_lossless_over_several_tiles(tmp_path):
    """The residual is coded per tile box against the cross-faded reconstruction."""
    codec = Codec(device="cpu", workers=1, tile_size=64)
    im = image("RGBA", 150, 100, seed=3)
    data = codec.encode(im, lossless=True)
    parsed = container.unpack(data)
    assert len(parsed.tiles) == 6 and all(RESD in t for t in parsed.tiles)
    assert np.array_equal(np.asarray(codec.decode(data)), np.asarray(im))


@pytest.mark.parametrize("k", [1, 2, 4])
def test_max_error_keeps_every_sample_within_k(rcodec, k):
    im = image("RGB", 61, 45, seed=k)
    data, quality = rcodec.encode_with(im, EncodeOptions(max_error=k))
    assert quality in (55, 70, 85)
    assert describe(data)["residual"] == {"max_error": k, "model": "test-residual"}
    assert largest_error(rcodec.decode(data), im) <= k


def test_quality_fixes_the_base_layer(rcodec):
    data, quality = rcodec.encode_with(image("RGB"), EncodeOptions(max_error=2, quality=40))
    assert quality == 40 and describe(data)["quality"] == 40


def test_same_file_and_pixels_with_one_and_two_threads(rcodec):
    im = image("RGB", 70, 50, seed=5)
    with threads(2):
        data = rcodec.encode(im, lossless=True)
        two = np.asarray(rcodec.decode(data))
    with threads(1):
        assert rcodec.encode(im, lossless=True) == data
        one = np.asarray(rcodec.decode(data))
    assert np.array_equal(one, two) and np.array_equal(one, np.asarray(im))


def test_the_torch_backend_decodes_the_same_pixels(rcodec):
    im = image("RGB", 70, 50, seed=6)
    data = rcodec.encode(im, max_error=1)
    on_torch = Codec(device="cpu", workers=1)
    on_torch._coders["aec-hp-ckbd"] = torch_coder()
    assert on_torch.coder().transforms.backend == "torch"
    assert np.array_equal(np.asarray(on_torch.decode(data)), np.asarray(rcodec.decode(data)))


def test_base_only_files_ask_for_the_exact_synthesis(rcodec):
    """New base-layer files carry exsy and decode with the exact synthesis; without the
    chunk (as 0.2.0 reads them) the float synthesis is within a level."""
    im = image("RGB", 70, 50, seed=7)
    data = rcodec.encode(im, 60)
    parsed = container.unpack(data)
    assert parsed.chunks[b"exsy"] == b"\x01" and describe(data)["synthesis"] == "exact"
    assert describe(data)["needs"] == "aec 0.1.0"  # older releases decode it (float)
    coder = rcodec.coder()
    _, latents = rcodec.decode_latents(data)
    from neuralcodec.codec.codec import rate_point

    exact = coder.synthesize_exact(latents, rate_point(parsed.header.quality))[:50, :70]
    assert np.array_equal(np.asarray(rcodec.decode(data)), exact)
    chunks = {k: v for k, v in parsed.chunks.items() if k != b"exsy"}
    without = container.pack(parsed.header, parsed.tiles, chunks)
    assert describe(without)["synthesis"] == "float"
    assert largest_error(rcodec.decode(without), Image.fromarray(exact)) <= 1


def test_a_psnr_above_the_base_layer_uses_the_residual_layer(rcodec):
    im = image("RGB", 61, 45, seed=8)
    data, _ = rcodec.encode_with(im, EncodeOptions(psnr=55))
    k = describe(data)["residual"]["max_error"]
    assert rcodec.prepare(im).psnr(rcodec.decode(data)) >= 55
    assert largest_error(rcodec.decode(data), im) <= k
    if k < 8:  # the largest K that reaches the target was chosen
        xhat = residual_layer.colour_array(rcodec.decode(rcodec.encode(im, 85)))
        assert residual_layer.psnr_with(np.asarray(im), xhat, k + 1) < 55


@pytest.mark.parametrize("args", [
    ["--lossless", "--bpp", "2"],
    ["--max-error", "2", "--size", "900"],
    ["--max-error", "2", "--psnr", "40"],
    ["--lossless", "--max-error", "3"],
    ["--max-error", "9"],
    ["--max-error", "1", "--model", "aec-vq"],
])
def test_usage_errors_are_one_line_and_exit_2(tmp_path, capsys, args):
    src = tmp_path / "in.png"
    image("RGB").save(src)
    out = tmp_path / "x.aec"
    assert run(["encode", str(src), str(out), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_sixteen_bit_input_is_refused_not_reduced(tmp_path, capsys):
    src = tmp_path / "deep.png"
    deep = (photo_like(30, 20)[..., 0].astype(np.uint16) * 257 + 3).astype(np.uint16)
    Image.frombytes("I;16", (30, 20), deep.astype("<u2").tobytes()).save(src)
    out = tmp_path / "x.aec"
    assert run(["encode", str(src), str(out), "--lossless"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--lossless" in err and "8 bits" in err
    assert not out.exists()
    with pytest.raises(AecError, match="8 bits"):
        neuralcodec.encode(Image.open(src), max_error=2)
    rgb = tmp_path / "deep-rgb.png"
    _png16_rgb(rgb, 40000)
    assert run(["encode", str(rgb), str(out), "--max-error", "2"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "16-bit RGB" in err and "--max-error" in err
    assert not out.exists()


def _with_tile_chunk(data: bytes, tile: int, tag: bytes, payload: bytes | None) -> bytes:
    """The file with one tile's chunk replaced (None: removed), CRCs made valid."""
    parsed = container.unpack(data)
    tiles = [dict(t) for t in parsed.tiles]
    if payload is None:
        del tiles[tile][tag]
    else:
        tiles[tile][tag] = payload
    return container.pack(parsed.header, tiles, parsed.chunks)


def test_a_damaged_residual_layer_fails_as_corrupt(rcodec):
    data = rcodec.encode(image("RGB"), lossless=True)
    resd = container.unpack(data).tiles[0][RESD]
    damaged = bytearray(data)
    damaged[data.index(resd) + len(resd) // 2] ^= 0x10
    with pytest.raises(CorruptFileError, match="RESD"):
        rcodec.decode(bytes(damaged))
    chunk = ResidualChunk.unpack(resd)
    for bad in (resd[:-3], resd[:5], bytes([9]) + resd[1:],
                dataclasses.replace(chunk, payload=chunk.payload + b"\0").pack()):
        with pytest.raises(CorruptFileError):
            rcodec.decode(_with_tile_chunk(data, 0, RESD, bad))


def test_a_residual_layer_missing_from_one_tile_is_damage():
    codec = Codec(device="cpu", workers=1, tile_size=64)
    data = codec.encode(image("RGB", 100, 60, seed=4), max_error=1)
    with pytest.raises(CorruptFileError, match="RESD of tile 1 is missing"):
        codec.decode(_with_tile_chunk(data, 1, RESD, None))


def test_a_release_without_the_layer_names_the_release_it_needs(rcodec, monkeypatch,
                                                                 tmp_path, capsys):
    """A reader that does not know a critical chunk (as 0.2.0 does not know RESD) says
    which release decodes the file, from its need chunk."""
    from neuralcodec.format import container as container_module

    data = rcodec.encode(image("RGB"), lossless=True)
    assert describe(data)["needs"] == "aec 0.3.0"
    known = container_module.is_known
    monkeypatch.setattr(container_module, "is_known", lambda tag: tag != RESD and known(tag))
    monkeypatch.setattr(container_module, "THIS_VERSION", (0, 2, 0))
    path = tmp_path / "x.aec"
    path.write_bytes(data)
    capsys.readouterr()
    assert run(["decode", str(path), str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs aec 0.3.0 or later" in err
    assert not (tmp_path / "x.png").exists()


def test_info_shows_the_layers(rcodec, tmp_path, capsys):
    path = tmp_path / "x.aec"
    path.write_bytes(rcodec.encode(image("L"), max_error=2, quality=70))
    capsys.readouterr()
    assert run(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "K=2 (near-lossless) test-residual" in text and "exact" in text
    assert run(["info", "--json", str(path)]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["residual"] == {"max_error": 2, "model": "test-residual"}
    assert facts["synthesis"] == "exact" and facts["quality"] == 70


def test_the_pillow_plugin_saves_lossless(rcodec):
    im = image("RGBA", seed=9)
    buffer = io.BytesIO()
    im.save(buffer, "AEC", lossless=True)
    buffer.seek(0)
    assert np.array_equal(np.asarray(Image.open(buffer)), np.asarray(im))
    buffer = io.BytesIO()
    im.convert("RGB").save(buffer, "AEC", max_error=4, quality=50)
    buffer.seek(0)
    assert largest_error(Image.open(buffer), im.convert("RGB")) <= 4


def test_other_models_are_refused_in_the_api():
    with pytest.raises(AecError, match="aec-hp-ckbd"):
        EncodeOptions(lossless=True, model="aec-vq")
    with pytest.raises(AecError, match="aec-hp-ckbd"):
        Codec(model="aec-vq", device="cpu").encode(image("RGB"), lossless=True)


def test_a_residual_model_this_release_lacks_is_named(rcodec, monkeypatch):
    data = rcodec.encode(image("RGB"), lossless=True)

    def missing(name=None):
        raise AecError(f"residual model '{name}' is not installed")

    monkeypatch.setattr(residual_layer, "residual_model", missing)
    with pytest.raises(AecError, match="needs residual model 'test-residual'"):
        rcodec.decode(data)



def test_partial_decoding_keeps_the_residual_of_tiles_a_lost_tile_does_not_reach():
    codec = Codec(device="cpu", workers=1, tile_size=64)
    im = image("RGB", 150, 100, seed=10)  # 3 x 2 tiles
    data = codec.encode(im, lossless=True)
    latn = container.unpack(data).tiles[0][b"LATN"]
    damaged = bytearray(data)
    damaged[data.index(latn) + 1] ^= 0xFF
    out, report = codec.decode_partial(bytes(damaged))
    assert report.lost_tiles == [0]
    # tiles 1, 3 and 4 reach into tile 0's coded box (4 at its corner)
    assert sum("residual layer skipped" in p for p in report.problems) == 3
    got, want = np.asarray(out), np.asarray(im)
    for i in (2, 5):  # beyond the lost tile's overlap: still lossless
        left, top, right, bottom = container.unpack(data).header.grid.box(i)
        assert np.array_equal(got[top:bottom, left:right], want[top:bottom, left:right])


def test_a_rerun_skips_what_was_asked_and_refuses_another_k(tmp_path, capsys):
    inputs = []
    for i, mode in enumerate(("RGB", "LA")):
        inputs.append(str(tmp_path / f"{i}.png"))
        image(mode, seed=i).save(inputs[-1])
    out = tmp_path / "out"
    assert run(["encode", *inputs, "-o", str(out), "--lossless", "-v"]) == 0
    assert capsys.readouterr().out.count("+ residual K=0") == 2
    assert run(["encode", *inputs, "-o", str(out), "--lossless"]) == 0
    assert "0 coded, 2 skipped" in capsys.readouterr().out
    assert run(["encode", *inputs, "-o", str(out), "--max-error", "2"]) == 1
    assert "was made with maximum error 0, not with maximum error 2" in capsys.readouterr().err
    assert run(["encode", *inputs, "-o", str(out), "-q", "70"]) == 1
    assert "not without the residual layer" in capsys.readouterr().err


def test_tile_workers_code_the_shipped_model_as_this_process_does(monkeypatch):
    """Worker processes load the shipped residual model themselves: the same file and
    pixels as coding in this process."""
    monkeypatch.undo()  # the shipped model, in this process too
    if not residual_layer_here("aec-hp-ckbd"):
        pytest.skip("the shipped residual model is not installed")
    im = image("RGBA", 150, 100, seed=11)  # 6 tiles of 64
    in_workers = Codec(device="cpu", workers=2, tile_size=64)
    here = Codec(device="cpu", workers=1, tile_size=64)
    try:
        data = in_workers.encode(im, max_error=1, quality=70)
        assert here.encode(im, max_error=1, quality=70) == data
        assert np.array_equal(np.asarray(in_workers.decode(data)),
                              np.asarray(here.decode(data)))
        assert largest_error(here.decode(data), im) <= 1
    finally:
        in_workers.close()


def test_pillow_cross_fades_tiles_in_the_documented_integer_arithmetic():
    """The final reconstruction, which the residual layer is coded against, joins tiles
    with Pillow's paste; docs/bitstream.md gives its integer arithmetic, and a Pillow
    that computed it otherwise would change exact files' pixels."""
    rng = np.random.default_rng(0)
    under, over = (rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(2))
    mask = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    pasted = Image.fromarray(under)
    pasted.paste(Image.fromarray(over), (0, 0), Image.fromarray(mask, "L"))
    a, b, m = under.astype(int), over.astype(int), mask.astype(int)[..., None]
    t = a * (255 - m) + b * m + 128
    assert np.array_equal(np.asarray(pasted), (t + (t >> 8)) >> 8)


def test_pillow_converts_to_gray_in_the_documented_integer_arithmetic():
    """Gray files' exact pixels are the exact synthesis's RGB converted to L by Pillow,
    whose integer arithmetic docs/bitstream.md gives."""
    rgb = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    r, g, b = (rgb[..., c].astype(int) for c in range(3))
    expected = (19595 * r + 38470 * g + 7471 * b + 32768) >> 16
    assert np.array_equal(np.asarray(Image.fromarray(rgb).convert("L")), expected)


def test_mutated_residual_chunks_fail_cleanly_or_decode(rcodec):
    """Bit flips, truncations, insertions and changed fields in RESD (CRCs made valid, so
    the residual decoder meets them): one of aec's errors (a changed fingerprint is other
    weights) or an image, nothing else (300 such mutations on the shipped model: 245
    errors, 55 decoded, worst 0.46 CPU s)."""
    import random

    data = rcodec.encode(image("RGBA", 70, 50, seed=12), max_error=1, quality=70)
    parsed = container.unpack(data)
    rng = random.Random(0)
    for _ in range(40):
        payload = bytearray(parsed.tiles[0][RESD])
        i = rng.randrange(len(payload))
        kind = rng.randrange(4)
        if kind == 0:
            payload[i] ^= 1 << rng.randrange(8)
        elif kind == 1:
            del payload[i:]
        elif kind == 2:
            payload[i:i] = rng.randbytes(rng.randrange(1, 9))
        else:
            payload[rng.randrange(min(len(payload), 20))] = rng.randrange(256)
        try:
            rcodec.decode(_with_tile_chunk(data, 0, RESD, bytes(payload)))
        except AecError:
            pass
