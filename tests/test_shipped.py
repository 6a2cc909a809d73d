"""Shipped models are frozen: their weights and decoding fields are pinned, a byte
changed fails here, their names are never reused for new weights, and a shipped model
that is not installed is named with what installs it."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from neuralcodec import AecError
from neuralcodec.cli import run
from neuralcodec.families import shipped
from neuralcodec.families.shipped import (
    IN_PACKAGE,
    MODELS_EXTRA,
    SHIPPED,
    ShippedModel,
    card_digest,
    file_sha256,
    pins_differ,
)
from neuralcodec.families.zoo import WEIGHTS_DIR, find_model, weights_fingerprint
from neuralcodec.format import container

GOLDEN = Path(__file__).resolve().parent / "golden"
# A copy of the table, written by hand: changing a pin in the code alone fails too.
# name: (since, fingerprint, SHA-256 of the weights file, SHA-256 of the card's family
# and config)
PINS = {
    "aec-hp-ckbd": ("0.1.0", "3744217b10a0477d",
                    "3744217b10a0477d69b7d7ec7d85242c536afe21d92e2bdbddc008051d161698",
                    "424cd8aff2f77ab1bd0ae44ed5f7f9ba11b72ab9c201fce24baa622d97196194"),
    "aec-vq": ("0.1.0", "5a3a3413efb2c7b1",
               "5a3a3413efb2c7b1b7c52705bb0f13dfe30d32827a1fa0119a07144e5e5266bb",
               "323058760706b71488d7ed97814565e18ba2d8715d4cf9082b8e5e0029d42db4"),
    "aec-residual-1": ("0.3.0", "40e6b45e8d1ccbc9",
                       "40e6b45e8d1ccbc9bdb31cce46bf6ad05a2273e62ec3f8f2bc4f791d4699e810",
                       "0fbb19be8976b1cadf884932b30d55758629bcba9e7cd9d308cb628b4973246b"),
    "aec-of": ("0.3.0", "f8a87c92c43f5dc1",
               "f8a87c92c43f5dc1d39495dba7d22ba67214149da3d0e73f9663c3924b7555bf",
               "a8932dc83c31e84c09b76cd90c43e2dca93f29e1b4b86bcbb8ce1c9d9e3b62dc"),
}


def test_the_table_holds_the_pins():
    assert {m.name: (m.since, m.fingerprint, m.weights_sha256, m.card_sha256)
            for m in SHIPPED} == PINS


@pytest.mark.parametrize("name", sorted(PINS))
def test_installed_shipped_model_is_byte_for_byte_the_shipped_one(name):
    """Recomputed from the files the codec would load ($AEC_MODEL_PATH first)."""
    since, fingerprint, weights_sha256, card_sha256 = PINS[name]
    info = find_model(name, layers=True)
    assert file_sha256(info.weights) == weights_sha256
    assert weights_fingerprint(info.weights).hex() == fingerprint
    assert card_digest(info.family, info.card) == card_sha256


def test_the_package_holds_exactly_the_models_it_ships():
    in_package = {m.name for m in SHIPPED if m.source == IN_PACKAGE}
    assert {card.stem for card in WEIGHTS_DIR.glob("*.json")} == in_package
    assert {w.stem for w in WEIGHTS_DIR.glob("*.safetensors")} == in_package


def test_one_byte_changed_is_found_and_such_weights_decode_nothing(tmp_path, monkeypatch,
                                                                   capsys):
    for suffix in (".safetensors", ".json"):
        shutil.copy(WEIGHTS_DIR / f"aec-vq{suffix}", tmp_path / f"aec-vq{suffix}")
    weights = tmp_path / "aec-vq.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    monkeypatch.setenv("AEC_MODEL_PATH", str(tmp_path))
    info = find_model("aec-vq")
    assert info.weights == weights
    entry = shipped.shipped_model("aec-vq")
    assert pins_differ(entry, file_sha256(weights), info.family, info.card) == [
        "weights are not those aec 0.1.0 shipped"]
    capsys.readouterr()
    assert run(["models"]) == 0
    assert "aec-vq: not the shipped aec-vq: weights are not those aec 0.1.0 shipped" \
        in capsys.readouterr().out
    golden = tmp_path.parent / "golden.aec"
    shutil.copy(GOLDEN / "aec-vq-rgb-q20.aec", golden)
    assert run(["decode", str(golden), str(tmp_path / "x.png")]) == 1
    assert "made with other weights of model 'aec-vq'" in capsys.readouterr().err


def test_new_weights_under_a_shipped_name_are_refused(tmp_path):
    from neuralcodec.families.model_files import write_model_files

    with pytest.raises(AecError, match="new weights need a new name, such as 'aec-vq-2'"):
        write_model_files({}, tmp_path, "aec-vq", {"family": "vq-vae"})
    assert not list(tmp_path.iterdir())


def test_a_shipped_model_that_is_not_installed_names_its_extra(tmp_path, monkeypatch,
                                                                capsys):
    """A frozen model moved to the models extra (docs/compatibility.md): files that need
    it, and encodes that ask for it, name the extra."""
    golden = GOLDEN / "rgb-q20.aec"
    parsed = container.unpack(golden.read_bytes())
    header = parsed.header
    old = ShippedModel("aec-old", "0.1.0", header.fingerprint.hex(), "0" * 64, "0" * 64,
                       source=MODELS_EXTRA)
    monkeypatch.setattr(shipped, "SHIPPED", (*SHIPPED, old))
    data = container.pack(dataclasses.replace(header, model="aec-old"), parsed.tiles)
    (tmp_path / "x.aec").write_bytes(data)
    capsys.readouterr()
    assert run(["decode", str(tmp_path / "x.aec"), str(tmp_path / "x.png")]) == 1
    assert capsys.readouterr().err == (
        f"aec: error: {tmp_path / 'x.aec'}: needs model 'aec-old' (fingerprint "
        f"{header.fingerprint.hex()}), frozen since aec 0.1.0, which is not installed; it "
        "comes with the models extra: pip install 'neuralcodec[models]'\n")
    png = tmp_path / "x.png"
    png.write_bytes((WEIGHTS_DIR.parent / "samples" / "kodim23.png").read_bytes())
    assert run(["encode", str(png), str(tmp_path / "y.aec"), "--model", "aec-old"]) == 1
    assert capsys.readouterr().err.endswith(
        "model 'aec-old' (frozen since aec 0.1.0) is not installed; it comes with the "
        "models extra: pip install 'neuralcodec[models]'\n")


def test_models_shows_status_and_needs(capsys):
    assert run(["models", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_name = {r["name"]: r for r in rows}
    assert by_name["aec-hp-ckbd"]["default"] and by_name["aec-hp-ckbd"]["needs"] == "numpy"
    assert by_name["aec-vq"]["needs"] == "torch" and not by_name["aec-vq"]["default"]
    assert {n: by_name[n]["frozen_since"] for n in PINS} == {n: p[0] for n, p in PINS.items()}
    assert run(["models"]) == 0
    out = capsys.readouterr().out
    assert "aec-hp-ckbd (default): frozen since 0.1.0; runs on NumPy" in out


def test_models_without_pytorch_says_what_needs_it():
    script = ("import sys\nsys.modules['torch'] = sys.modules['compressai'] = None\n"
              "from neuralcodec.cli import run\nrun(['models'])")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout
    assert "aec-vq: frozen since 0.1.0; needs the torch extra (not installed)" in out
    assert "the torch extra, not installed, adds effort above 1" in out


def test_a_model_of_ones_own_is_not_frozen(tmp_path, monkeypatch, capsys):
    for suffix in (".safetensors", ".json"):
        shutil.copy(WEIGHTS_DIR / f"aec-vq{suffix}", tmp_path / f"mine{suffix}")
    monkeypatch.setenv("AEC_MODEL_PATH", str(tmp_path))
    assert run(["models", "--json"]) == 0
    rows = {json.loads(line)["name"]: json.loads(line)
            for line in capsys.readouterr().out.splitlines()}
    assert rows["mine"]["status"] == "not frozen" and rows["mine"]["frozen_since"] is None
