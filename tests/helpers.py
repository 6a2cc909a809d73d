"""Helpers the tests import: synthetic photo-like images and a thread-count context."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from neuralcodec.codec.codec import rate_point


def photo_like(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients, edges and mild noise: compressible like a photo, unlike pure noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    img = np.empty((height, width, 3))
    for c in range(3):
        fx, fy = rng.uniform(0.005, 0.05, 2)
        img[..., c] = 128 + 80 * np.sin(xx * fx + c) * np.cos(yy * fy - c)
    img[(xx - width / 2) ** 2 + (yy - height / 3) ** 2 < (min(width, height) / 4) ** 2] = (
        200, 60, 40)
    img += rng.normal(0, 4, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


@contextmanager
def threads(n: int) -> Iterator[None]:
    """Run the block with the transforms on n threads, NumPy's BLAS and torch alike,
    restoring the previous counts after."""
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(n, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)


def torch_coder(model: str = "aec-hp-ckbd"):
    """A model's coder with its transforms in torch on the CPU (the codec itself runs them
    on NumPy there), for either family on the hyperprior's transforms."""
    from neuralcodec.families.zoo import load_coder

    return load_coder(model, "cpu", backend="torch")


def decode_latents_with(coder, data: bytes, tile: int = 0):
    """A file's latents (one tile) as ``coder`` decodes them."""
    from neuralcodec.format import container
    from neuralcodec.io.arrays import padded_size

    parsed = container.unpack(data)
    box = parsed.header.grid.coded_box(tile)
    size = padded_size(box[2] - box[0], box[3] - box[1], coder.pad_multiple)
    return coder.decompress_latents(parsed.tiles[tile], size,
                                    rate_point(parsed.header.quality), parsed.header.version)


def assert_numpy_and_torch_coders_agree(codec, reference, data: bytes, quality: int) -> None:
    """``codec``'s coder on NumPy and ``reference``, on torch, decode ``data`` to the very
    same latents, and synthesize pixels that agree but for float rounding; ``quality`` is
    the stored one."""
    import numpy as np

    _, numpy_latents = codec.decode_latents(data)
    torch_latents = decode_latents_with(reference, data)
    assert np.array_equal(numpy_latents.y_symbols, torch_latents.y_symbols)
    assert np.array_equal(numpy_latents.z_symbols, torch_latents.z_symbols)
    assert np.array_equal(numpy_latents.y_hat, torch_latents.y_hat)
    assert codec.coder().transforms.backend == "numpy" and reference.transforms.backend == "torch"
    pixels = codec.coder().synthesize(numpy_latents, rate_point(quality))
    assert np.abs(pixels - reference.synthesize(torch_latents, rate_point(quality))).max() < 1e-4


def save_photo(path: Path, width: int, height: int, seed: int = 0) -> Path:
    """A photo-like RGB image saved at ``path`` (format from the suffix)."""
    from PIL import Image

    Image.fromarray(photo_like(width, height, seed), "RGB").save(path)
    return path


def channel_context_model(directory: Path, name: str = "aec-hp-elic-test") -> str:
    """Export a channel-context model warm-started from aec-hp-ckbd to ``directory``: the
    shipped transforms, untrained context networks and a small random LRP and channel
    context input (so that they act); returns its name (put ``directory`` in
    AEC_MODEL_PATH to use it)."""
    from neuralcodec.families.channel_context.model import ChannelConfig
    from neuralcodec.families.channel_context.weights import save_model
    from neuralcodec.training.channel_context import new_model, warm_state

    torch.manual_seed(0)
    state = warm_state("aec-hp-ckbd")
    model = new_model(ChannelConfig.from_dict(state["options"]["config"]))
    model.load_state_dict(state["model"])
    with torch.no_grad():
        for lrp in model.lrp:
            lrp[-1].weight.normal_(0, 0.02)
            lrp[-1].bias.normal_(0, 0.05)
        # The warm start leaves the channel context unused; let it act too.
        M = model.config.M
        for k, g in enumerate(model.config.groups[1:], 1):
            model.group_parameters[k][0].weight[:, M:M + 2 * g].normal_(0, 0.02)
    save_model(model, directory, name, {"summary": "test model, untrained contexts"})
    return name

