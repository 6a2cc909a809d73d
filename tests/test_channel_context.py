"""The channel-context family (channel groups + checkerboard + LRP) through a model
warm-started from aec-hp-ckbd with untrained context networks: registration, round
trips, the exact integer parameter path, determinism, damage, and its training."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from neuralcodec import Codec
from neuralcodec.cli import run
from neuralcodec.errors import AecError
from neuralcodec.families.base import get_family
from neuralcodec.families.channel_context import CHUNK_ESCAPE, CHUNK_HYPER, CHUNK_LATENT, FAMILY
from neuralcodec.families.channel_context.integer_net import layers_of
from neuralcodec.families.hyperprior import FAMILY as HYPERPRIOR
from neuralcodec.families.hyperprior.integer_net import (
    _EXACT_LIMIT,
    ACT_LIMIT,
    FRAC_BITS,
    WEIGHT_BITS,
    checkerboard_anchors,
)
from neuralcodec.families.hyperprior.latent_codec import channels_first
from neuralcodec.families.hyperprior.model import checkerboard_anchor_mask
from neuralcodec.families.torch_arrays import to_array
from neuralcodec.format import container
from neuralcodec.format.chunks import owners
from neuralcodec.metrics import psnr

from .helpers import (
    assert_numpy_and_torch_coders_agree,
    channel_context_model,
    decode_latents_with,
    photo_like,
    rate_point,
    threads,
    torch_coder,
)


@pytest.fixture(scope="module")
def model_name(tmp_path_factory):
    directory = tmp_path_factory.mktemp("models")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AEC_MODEL_PATH", str(directory))
        yield channel_context_model(directory)


@pytest.fixture(scope="module")
def codec(model_name) -> Codec:
    torch.set_num_threads(2)
    return Codec(model=model_name, device="cpu").load()


@pytest.fixture(scope="module")
def reference(model_name):
    """The model's coder on the torch backend (the codec on the CPU runs NumPy)."""
    return torch_coder(model_name)


def _image(width=120, height=72, seed=9) -> Image.Image:
    return Image.fromarray(photo_like(width, height, seed=seed), "RGB")


def test_family_and_its_own_critical_chunks_are_registered(codec):
    assert get_family(FAMILY.name) is FAMILY
    assert codec.coder().card["family"] == FAMILY.name
    tags = {CHUNK_HYPER, CHUNK_LATENT, CHUNK_ESCAPE}
    assert set(FAMILY.chunks) == tags
    assert not tags & set(HYPERPRIOR.chunks)
    for tag in tags:
        assert owners()[tag].startswith(FAMILY.name) and tag[:1].isupper()
    parsed = container.unpack(codec.encode(_image(), 60))
    assert {CHUNK_HYPER, CHUNK_LATENT} <= set(parsed.tiles[0]) <= tags


@pytest.mark.parametrize("size", [(1, 1), (65, 47)])
def test_roundtrip_through_the_codec(codec, size):
    im = _image(*size, seed=size[0])
    out = codec.decode(codec.encode(im, 75))
    assert out.size == size and out.mode == "RGB"


def test_untiled_version_2_files_roundtrip_with_the_same_latent_payloads(codec, model_name):
    im = _image(70, 50)
    v2 = Codec(model=model_name, device="cpu", format_version=2)
    data = v2.encode(im, 40)
    assert data[8] == 2
    assert codec.decode(data).tobytes() == v2.decode(data).tobytes()
    tile2 = container.unpack(data).tiles[0]
    tile3 = container.unpack(codec.encode(im, 40)).tiles[0]
    assert tile2 == tile3


@pytest.mark.parametrize("damage", ["unaligned", "empty", "truncated", "noise"])
def test_a_damaged_latent_chunk_fails_cleanly_or_decodes(codec, damage):
    coder = codec.coder()
    x = codec.padded_input(codec.prepare(_image()), coder)
    chunks = coder.compress(coder.analyse(x), rate_point(5000), 3)
    payload = chunks[CHUNK_LATENT]
    chunks[CHUNK_LATENT] = {
        "unaligned": payload + b"\x00",
        "empty": b"",
        "truncated": payload[: len(payload) // 2 // 4 * 4],
        "noise": np.random.default_rng(1).bytes(len(payload) // 4 * 4),
    }[damage]
    try:
        latents = coder.decompress_latents(chunks, tuple(x.shape[:2]), rate_point(5000), 3)
    except AecError:
        return
    # Damage the CRC would catch is not always detectable here; the image must be valid.
    assert damage != "unaligned"
    out = coder.synthesize(latents, rate_point(5000))
    assert out.shape == x.shape and np.isfinite(out).all()


def test_roundtrip_through_the_cli_keeps_the_transforms_fidelity(codec, model_name, tmp_path):
    src = tmp_path / "in.png"
    _image(96, 64).save(src)
    assert run(["encode", str(src), "-o", str(tmp_path / "x.aec"), "-q", "90",
                "--model", model_name, "--quiet"]) == 0
    assert run(["decode", str(tmp_path / "x.aec"), "-o", str(tmp_path / "out.png"),
                "--quiet"]) == 0
    out = np.asarray(Image.open(tmp_path / "out.png"))
    # The transforms are aec-hp-ckbd's: untrained contexts cost rate, not fidelity.
    assert psnr(np.asarray(Image.open(src)), out) > 28


def test_coding_on_the_cpu_loads_neither_torch_nor_compressai(model_name):
    script = ("import sys, numpy as np\nfrom PIL import Image\nfrom neuralcodec import Codec\n"
              f"codec = Codec({model_name!r}, device='cpu')\n"
              "im = Image.fromarray(np.zeros((20, 30, 3), np.uint8))\n"
              "codec.decode(codec.encode(im, 50))\nprint(' '.join(sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True).stdout.split()
    assert not [m for m in loaded if m.split(".")[0] in ("torch", "compressai")]


def test_without_pytorch_this_family_codes_on_the_cpu(model_name, tmp_path):
    """PyTorch absent: encoding and decoding work; effort above 1 names the extra."""
    src = tmp_path / "in.png"
    _image(96, 64, seed=8).save(src)
    script = (
        "import sys\nsys.modules['torch'] = sys.modules['compressai'] = None\n"
        "from neuralcodec.cli import run\n"
        f"src, out, model = {str(src)!r}, {str(tmp_path)!r}, {model_name!r}\n"
        "codes = [run(['encode', src, out + '/a.aec', '--model', model, '--quiet']),\n"
        "         run(['decode', out + '/a.aec', out + '/a.png', '--quiet']),\n"
        "         run(['encode', src, out + '/b.aec', '--model', model, '--effort', '2',\n"
        "              '--quiet'])]\n"
        "print(codes)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.split() == ["[0,", "0,", "1]"], done.stderr
    assert "pip install 'neuralcodec[torch]'" in done.stderr
    assert (tmp_path / "a.png").exists() and not (tmp_path / "b.aec").exists()


def test_decoded_latents_equal_the_encoders(codec, reference):
    coder, latent_codec, y, z_sym = _latents(codec, reference, 5000, _image())
    x = codec.padded_input(codec.prepare(_image()), coder)
    chunks = coder.compress(coder.analyse(x), rate_point(5000), 3)
    _, encoded = latent_codec.compress(y, rate_point(5000), z_sym)
    decoded = coder.decompress_latents(chunks, tuple(x.shape[:2]), rate_point(5000), 3)
    assert np.array_equal(encoded.y_symbols, decoded.y_symbols)
    assert np.array_equal(encoded.y_hat, decoded.y_hat)


def test_the_numpy_and_torch_coders_decode_the_same_latents_and_pixels(codec, reference):
    """The CPU codes this family on NumPy too; torch (CUDA, effort, training) must read
    its files to the very same latents, and its pixels agree but for float rounding."""
    data = codec.encode(_image(130, 90, seed=13), 55)
    assert_numpy_and_torch_coders_agree(codec, reference, data, 5500)


def _grid(real):
    return np.clip(real * 2**FRAC_BITS, -ACT_LIMIT, ACT_LIMIT)


def _run(layers, a):
    for layer in layers:
        a = layer(a)
    return a


def _reference(path, groups, hyper, y):
    """The integer path evaluated plainly: every network on the full latent grid, the
    spatial context as a full 5x5 convolution of the masked anchors (arrays (h, w, C))."""
    h, w = y.shape[:2]
    anchor = checkerboard_anchors(h, w)[:, :, None]
    y_hat, y_sym, means_all, corrections = [], [], [], []
    for k in range(len(groups)):
        y_k = y[:, :, sum(groups[:k]):sum(groups[:k + 1])]
        cc = _run(path.channel_context[k], _grid(np.concatenate(y_hat, 2))) if k else None

        def params(sc, k=k, cc=cc):
            a = np.concatenate([hyper, sc] if cc is None else [hyper, cc, sc], 2)
            scales, means = np.split(_run(path.group_parameters[k], a), 2, axis=2)
            return path.table_index(scales), means * 2.0**-FRAC_BITS

        sc_width = path.spatial_context[k].weight.shape[0]
        _, means_a = params(np.zeros((h, w, sc_width)))
        anchors = (np.round(y_k - means_a) + means_a) * anchor
        _, means_n = params(path.spatial_context[k](_grid(anchors)))
        means = np.where(anchor, means_a, means_n)
        sym = np.round(y_k - means)
        parts = [_grid(means), _grid(sym + means)]
        if cc is not None:
            parts.insert(1, cc)
        corr = np.clip(_run(path.lrp[k], np.concatenate(parts, 2)), -512, 512) * 2.0**-FRAC_BITS
        y_hat.append(sym + means + corr)
        y_sym.append(sym)
        means_all.append(means)
        corrections.append(corr)
    return (np.concatenate(y_hat, 2), np.concatenate(y_sym, 2),
            np.concatenate(means_all, 2), np.concatenate(corrections, 2))


def _latents(codec, coder, quality, image=None):
    """The torch-backed ``coder``, its latent codec, the latents ``y`` (h, w, M) at
    ``quality`` (stored) and their hyper-latent's symbols, as that coder computes them."""
    x = codec.padded_input(codec.prepare(image or _image(130, 100, seed=4)), coder)
    level = rate_point(quality).level(coder.config.levels)
    y_t = coder.transforms.latents(coder.analyse(x), level)
    latent_codec = coder.latent_codec
    z_sym = latent_codec.z_symbols(coder.transforms.hyper_analyse(y_t, level))
    return coder, latent_codec, to_array(y_t.double()), z_sym


@pytest.mark.parametrize("quality", [1000, 9000])
def test_integer_path_equals_its_plain_full_grid_evaluation(codec, reference, quality):
    """The coding path computes only the positions of a pass and the anchor taps of the
    spatial context; its integers must be the plain full-grid network's, exactly (LRP
    included, and acting)."""
    coder, latent_codec, y, z_sym = _latents(codec, reference, quality)
    _, decoded = latent_codec.compress(y, rate_point(quality), z_sym)
    path = latent_codec.path
    hyper = path.hyper(z_sym, rate_point(quality))
    y_hat, y_sym, _, corr = _reference(path, coder.config.groups, hyper, y)
    assert np.abs(corr).max() > 0.01  # the LRP acts
    assert np.array_equal(decoded.y_symbols, channels_first(y_sym).astype(np.int64))
    assert np.array_equal(decoded.y_hat, y_hat.astype(np.float32))


def test_integer_path_follows_the_float64_networks(codec, reference):
    """Means and LRP corrections of the integer path are the float64 model's, up to the
    activation grid and the weights' rounding: about a thousandth of a quantization step
    on average, and at worst 0.14 of one (group 2 at quality 60, rate level 5.4 of the
    ten-level warm start; 0.1 bounded it at level 4.8 of the nine-level one) through the
    warm-started, hyperprior-sized parameter networks."""
    quality = 6000
    coder, latent_codec, y, z_sym = _latents(codec, reference, quality)
    path = latent_codec.path
    groups = coder.config.groups
    hyper = path.hyper(z_sym, rate_point(quality))
    y_hat, _, means_int, _ = (torch.from_numpy(channels_first(a))
                              for a in _reference(path, groups, hyper, y))
    y = torch.from_numpy(channels_first(y))

    model = copy.deepcopy(coder.transforms.model).double()
    level = torch.tensor([rate_point(quality).level(model.config.levels)],
                         dtype=torch.float64)
    z_hat = torch.from_numpy(channels_first(z_sym + latent_codec.z_medians))
    with torch.no_grad():
        hyper_f = model.hyper_synthesis(z_hat, level)
        hyper = torch.from_numpy(channels_first(hyper))
        assert (hyper_f - hyper * 2.0**-FRAC_BITS).abs().max() < 0.05
        anchor = checkerboard_anchor_mask(*y.shape[2:])
        offsets = model.config.offsets
        for k in range(len(groups)):
            # Teacher-forced: the float networks see the integer path's decoded latents.
            cc = model.channel_features(k, y_hat[:, :offsets[k]] if k else None)
            _, means_a = model.group_params(k, hyper_f, cc, None)
            # ... and its decoded anchors (a float mean near a rounding boundary would
            # otherwise flip an anchor, which the spatial context then amplifies).
            means_k = means_int[:, offsets[k]:offsets[k + 1]]
            anchors = torch.round(y.double()[:, offsets[k]:offsets[k + 1]] - means_k) + means_k
            _, means_n = model.group_params(k, hyper_f, cc,
                                            model.spatial_context[k](anchors * anchor))
            means = torch.where(anchor, means_a, means_n)
            err = (means - means_int[:, offsets[k]:offsets[k + 1]]).abs()
            assert err.max() < 0.2 and err.mean() < 0.002, (k, float(err.max()), float(err.mean()))


def test_widest_layer_sums_exactly_in_float64(codec, reference):
    """The exact path's widest sums stay exact (every backend codes with this one path,
    built from the weights file)."""
    path = codec.coder().latent_codec.path
    assert reference.latent_codec is not path  # each coder builds its own
    fan_in = {}
    for name, layers in layers_of(path).items():
        for i, layer in enumerate(layers):
            w = layer.weight
            fan_in[f"{name}[{i}]"] = (w.shape[0] * w.shape[2] * w.shape[3] if layer.transposed
                                      else w[0].size)
            assert np.abs(layer.weight).max() <= 2**WEIGHT_BITS
    widest = max(fan_in.values())
    assert widest == fan_in["h_s[0]"] == 128 * 25  # the hyperprior's h_s deconvolutions
    new = max(v for k, v in fan_in.items() if not k.startswith("h_s"))
    assert new == fan_in["spatial_context.4[0]"] == 64 * 25
    assert ACT_LIMIT * 2**WEIGHT_BITS * widest < _EXACT_LIMIT / 2**7


def test_same_bytes_and_latents_whatever_threads_onednn_and_dtype(codec, model_name):
    im = _image()
    with threads(1):
        one = codec.encode(im, 70)
    with threads(2):
        two = codec.encode(im, 70)
        _, decoded = codec.decode_latents(two)
    assert one == two
    dtype = torch.get_default_dtype()
    try:
        torch.set_default_dtype(torch.float64)
        other = torch_coder(model_name)
        other.transforms.model.double()  # float64 transforms: the same integer path
        with threads(1), torch.backends.mkldnn.flags(enabled=False):
            other_latents = decode_latents_with(other, two)
    finally:
        torch.set_default_dtype(dtype)
    assert np.array_equal(decoded.y_symbols, other_latents.y_symbols)
    assert np.array_equal(decoded.z_symbols, other_latents.z_symbols)
    assert np.array_equal(decoded.y_hat, other_latents.y_hat)


@pytest.mark.parametrize("damage", ["no latents", "no hyper-latent", "hyperprior's tags"])
def test_a_file_without_its_chunks_is_a_clean_error(codec, damage):
    parsed = container.unpack(codec.encode(_image(), 50))
    tile = dict(parsed.tiles[0])
    if damage == "no latents":
        del tile[CHUNK_LATENT]
    elif damage == "no hyper-latent":
        del tile[CHUNK_HYPER]
    else:  # the right payloads under the hyperprior family's (known, critical) tags
        tile = {b"HYPR": tile[CHUNK_HYPER], b"LATN": tile[CHUNK_LATENT]}
    data = container.pack(parsed.header, [tile], parsed.chunks)
    with pytest.raises(AecError, match="missing"):
        codec.decode(data)


def test_warm_start_gives_each_group_the_hyperpriors_parameters():
    """Anchors start with exactly aec-hp-ckbd's parameters; non-anchors with its
    parameters from the context of their own group's anchors."""
    from neuralcodec.families.channel_context.model import ChannelConfig
    from neuralcodec.families.hyperprior.model import ModelConfig
    from neuralcodec.families.hyperprior.weights import read_state
    from neuralcodec.families.zoo import find_model
    from neuralcodec.training import hyperprior
    from neuralcodec.training.channel_context import new_model, warm_state

    info = find_model("aec-hp-ckbd")
    ckbd = hyperprior.new_model(ModelConfig.from_dict(info.card["config"]))
    ckbd.load_state_dict(read_state(info)[0], strict=False)
    state = warm_state("aec-hp-ckbd")
    model = new_model(ChannelConfig.from_dict(state["options"]["config"]))
    model.load_state_dict(state["model"])
    torch.manual_seed(3)
    M, offsets = model.config.M, model.config.offsets
    hyper = torch.randn(1, M, 6, 6)
    anchors = torch.randn(1, M, 6, 6) * checkerboard_anchor_mask(6, 6)
    with torch.no_grad():
        for k, g in enumerate(model.config.groups):
            a, b = offsets[k], offsets[k + 1]
            cc = torch.randn(1, 2 * g, 6, 6) if k else None
            own = torch.zeros_like(anchors)
            own[:, a:b] = anchors[:, a:b]
            for sc, ctx in ((None, None), (model.spatial_context[k](own[:, a:b]),
                                           ckbd.context(own))):
                got = model.group_params(k, hyper, cc, sc)
                want = [t[:, a:b] for t in ckbd.gaussian_params(hyper, ctx)]
                for x, y in zip(got, want, strict=True):
                    torch.testing.assert_close(x, y, atol=1e-4, rtol=1e-4)


def _ckbd_model(weights):
    from neuralcodec.families.hyperprior.model import ModelConfig
    from neuralcodec.families.zoo import find_model
    from neuralcodec.training import hyperprior

    model = hyperprior.new_model(ModelConfig.from_dict(find_model("aec-hp-ckbd").card["config"]))
    model.load_state_dict({k: v.float() for k, v in weights.items()})
    model.transform_autocast = None
    return model.eval()


def test_permuting_the_latent_channels_keeps_the_model():
    """aec-hp-ckbd with its channels reordered computes the same image and the same
    likelihoods, channel order[i] of the original now channel i."""
    from neuralcodec.families.hyperprior.weights import read_state
    from neuralcodec.families.zoo import find_model
    from neuralcodec.training.channel_context import permute_latent_channels

    weights, _, _ = read_state(find_model("aec-hp-ckbd"))
    order = torch.randperm(192, generator=torch.Generator().manual_seed(1))
    x = torch.from_numpy(photo_like(64, 64, seed=2)).permute(2, 0, 1)[None].float() / 255
    level = torch.tensor([4.0])
    with torch.no_grad():
        before = _ckbd_model(weights)(x, level)
        after = _ckbd_model(permute_latent_channels(weights, order))(x, level)
    torch.testing.assert_close(after["x_hat"], before["x_hat"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(after["likelihoods"]["y"], before["likelihoods"]["y"][:, order],
                               atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(after["likelihoods"]["z"], before["likelihoods"]["z"])


def test_a_rate_ordered_warm_start_puts_the_costliest_channels_first(tmp_path):
    """``--channel-order rate``: the warm start's channel 0 is the one aec-hp-ckbd spends
    most bits on, and so on down."""
    from neuralcodec.families.hyperprior.weights import read_state
    from neuralcodec.families.zoo import find_model
    from neuralcodec.training.channel_context import (
        channel_order_by_rate,
        permute_latent_channels,
        warm_state,
    )
    from neuralcodec.training.data import pad

    for i in range(2):
        Image.fromarray(photo_like(96, 64, seed=10 + i), "RGB").save(tmp_path / f"{i}.png")
    info = find_model("aec-hp-ckbd")
    ckbd, _, _ = read_state(info)
    order = channel_order_by_rate(ckbd, info.card["config"], [str(tmp_path)])
    assert sorted(order.tolist()) == list(range(192))
    model = _ckbd_model(permute_latent_channels(ckbd, order))
    shares = torch.zeros(192, dtype=torch.float64)
    with torch.no_grad():
        for level in (1.0, 4.0, 7.0):
            bits = torch.zeros_like(shares)
            for i in range(2):
                x = torch.from_numpy(photo_like(96, 64, seed=10 + i)).permute(2, 0, 1)[None]
                y_lik = model(pad(x.float() / 255, 64), torch.tensor([level]))["likelihoods"]["y"]
                bits += (-torch.log2(y_lik)).sum((0, 2, 3)).double()
            shares += bits / bits.sum()
    assert torch.all(shares[:-1] >= shares[1:] - 1e-6)

    state = warm_state("aec-hp-ckbd", channel_order="rate", data=[str(tmp_path)])
    for name in ("g_a.6.weight", "g_s.0.weight", "h_a.0.weight", "gain_y.log_gain"):
        torch.testing.assert_close(state["model"][name].float(),
                                   permute_latent_channels(ckbd, order)[name].float())


def test_effort_refines_with_this_familys_rate_and_files_decode_plainly(codec, model_name):
    from .test_effort import rd_cost

    image = _image(96, 80, seed=5)
    files = {e: codec.encode(image, 60, effort=e) for e in (1, 2, codec.coder().max_effort)}
    plain = Codec(model=model_name, device="cpu")
    for effort, data in files.items():
        assert plain.decode(data).size == image.size, effort
    costs = {e: rd_cost(codec, image, data) for e, data in files.items()}
    assert all(costs[e] <= costs[1] + 1e-9 for e in costs), costs
    assert costs[max(costs)] < 0.99 * costs[1], costs


def test_frozen_steps_on_the_rate_alone_give_the_full_losss_gradients():
    """With the transforms and the (zero) LRP frozen, leaving out g_s and the distortion
    changes no gradient of the networks that train."""
    from neuralcodec.families.channel_context.model import ChannelConfig
    from neuralcodec.training.channel_context import new_model, set_frozen, warm_state
    from neuralcodec.training.hyperprior import rd_loss

    state = warm_state("aec-hp-ckbd")
    model = new_model(ChannelConfig.from_dict(state["options"]["config"]))
    model.load_state_dict(state["model"])
    set_frozen(model, True)
    x = torch.from_numpy(photo_like(64, 64, seed=4)).permute(2, 0, 1)[None].float() / 255
    level = torch.tensor([3.0])
    grads = []
    for rate_only in (False, True):
        torch.manual_seed(0)  # the same noise in the likelihoods
        model.zero_grad()
        rd_loss(model, x, level, rate_only=rate_only)["loss"].backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()
                      if p.requires_grad and p.grad is not None})
    full, rate = grads
    assert full.keys() == rate.keys() and any(n.startswith("channel_context") for n in full)
    for name in full:
        torch.testing.assert_close(rate[name], full[name], rtol=1e-4, atol=1e-7)


def test_warm_start_copies_the_transforms_and_freezing_holds_them(tmp_path):
    """Steps 1-2 (frozen) train only the new networks; step 3 trains everything."""
    from neuralcodec.families.hyperprior.weights import read_state
    from neuralcodec.families.zoo import find_model
    from neuralcodec.training.channel_context import ChannelTrainOptions, export, train

    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        Image.fromarray(photo_like(72, 64, seed=i), "RGB").save(data / f"{i}.png")
    ckbd, _, _ = read_state(find_model("aec-hp-ckbd"))
    states = []
    for steps in (1, 2, 3):
        opts = ChannelTrainOptions(data=[str(data)], out=str(tmp_path / "run"), steps=steps,
                                   batch_size=1, patch=64, checkpoint_every=1, log_every=1,
                                   freeze_transforms=2, channel_order="stored")
        train(opts, log=lambda m: None)
        state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
        states.append(state["model"])
    copied = ("g_a.0.weight", "g_s.6.bias", "h_s.4.weight", "gain_y.log_gain")
    for name in copied:
        assert torch.equal(states[1][name], ckbd[name].float()), name
    assert not torch.equal(states[0]["group_parameters.2.0.weight"],
                           states[1]["group_parameters.2.0.weight"])
    assert not torch.equal(states[1]["g_s.6.bias"], states[2]["g_s.6.bias"])

    weights = export(tmp_path / "run", "elic-tiny", tmp_path / "models")
    card = json.loads(weights.with_suffix(".json").read_text())
    assert card["family"] == FAMILY.name and card["config"]["groups"] == [16, 16, 32, 64, 64]
    assert card["training"]["steps"] == 3 and card["training"]["options"]["init"] == "aec-hp-ckbd"


def test_a_resumed_frozen_run_continues_exactly(tmp_path):
    """Two frozen steps, a stop and a resumed third step give the weights of three steps in
    one process (the run of the next default model is stopped and resumed every session)."""
    from neuralcodec.training.channel_context import ChannelTrainOptions, train

    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        Image.fromarray(photo_like(72, 64, seed=i), "RGB").save(data / f"{i}.png")

    def run_steps(out, steps):
        opts = ChannelTrainOptions(data=[str(data)], out=str(tmp_path / out), steps=steps,
                                   batch_size=1, patch=64, checkpoint_every=100, log_every=1,
                                   lr=1e-4, lr_drop_at=1, freeze_transforms=10)
        train(opts, log=lambda m: None)
        return torch.load(tmp_path / out / "checkpoint.pt", weights_only=True)

    run_steps("resumed", 2)
    resumed, straight = run_steps("resumed", 3), run_steps("straight", 3)
    for name, value in straight["model"].items():
        torch.testing.assert_close(resumed["model"][name], value, rtol=0, atol=1e-7, msg=name)
