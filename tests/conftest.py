"""Shared fixtures: the shipped model loaded once, and a small photo-like image."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from neuralcodec import Codec

from .helpers import photo_like


@pytest.fixture(scope="session")
def codec() -> Codec:
    torch.set_num_threads(2)
    return Codec(device="cpu").load()


@pytest.fixture(scope="session")
def rgb_image() -> Image.Image:
    return Image.fromarray(photo_like(96, 80), "RGB")
