"""Training data: folders of photos decoded once into memory, sampled as random crops."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..io.images import image_suffixes


def pad(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad an (N, C, H, W) batch's bottom and right edges by replication up to a multiple
    of ``multiple`` (as the codec pads its input, :func:`neuralcodec.io.arrays.pad`)."""
    h, w = x.shape[2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (0, pw, 0, ph), mode="replicate")


def list_images(folders: list[str | Path]) -> list[Path]:
    """All image files below the given folders, sorted for reproducibility."""
    files: list[Path] = []
    suffixes = image_suffixes()
    for folder in folders:
        folder = Path(folder)
        if folder.is_file():
            files.append(folder)
            continue
        files.extend(p for p in folder.rglob("*") if p.suffix.lower() in suffixes)
    return sorted(files)


def load_rgb(path: Path, max_side: int) -> torch.Tensor:
    """Decode to a uint8 (3, H, W) tensor whose long side is at most ``max_side``."""
    with Image.open(path) as im:
        im.draft("RGB", (max_side, max_side))  # JPEG DCT scaling: faster decode
        im = im.convert("RGB")
        if max(im.size) > max_side:
            scale = max_side / max(im.size)
            size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
            im = im.resize(size, Image.Resampling.LANCZOS)
        arr = np.asarray(im, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


class CropSampler:
    """Random crops with random downscaling in [min_scale, 1] and horizontal flips.

    Images are decoded once and kept in memory as uint8 on ``device`` (on a GPU the
    cropping and resampling run there too, so no host work feeds each step); downscaling
    before cropping also hides the faint JPEG artefacts of JPEG-sourced training photos.
    """

    def __init__(
        self,
        folders: list[str | Path],
        patch: int = 128,
        min_scale: float = 0.5,
        max_side: int = 1024,
        seed: int = 0,
        log=print,
        device: str | torch.device = "cpu",
    ):
        paths = list_images(folders)
        if not paths:
            raise ValueError(f"no images found in {', '.join(map(str, folders))}")
        self.patch = patch
        self.min_scale = min_scale
        self.images: list[torch.Tensor] = []
        for i, path in enumerate(paths):
            img = load_rgb(path, max_side)
            if min(img.shape[1:]) >= patch:
                self.images.append(img.to(device))
            if (i + 1) % 200 == 0:
                log(f"loaded {i + 1}/{len(paths)} training images")
        if not self.images:
            raise ValueError(f"no training image is at least {patch}x{patch}")
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.images)

    def crop(self) -> torch.Tensor:
        img = self.images[self.rng.randrange(len(self.images))]
        h, w = img.shape[1:]
        scale = self.rng.uniform(self.min_scale, 1.0)
        size = min(round(self.patch / scale), h, w)
        top = self.rng.randrange(h - size + 1)
        left = self.rng.randrange(w - size + 1)
        region = img[:, top : top + size, left : left + size].float().unsqueeze(0) / 255.0
        if size != self.patch:
            region = F.interpolate(
                region, size=(self.patch, self.patch), mode="bilinear",
                antialias=True, align_corners=False,
            ).clamp(0, 1)
        if self.rng.random() < 0.5:
            region = region.flip(3)
        return region[0]

    def batch(self, batch_size: int) -> torch.Tensor:
        return torch.stack([self.crop() for _ in range(batch_size)])

    def get_state(self) -> object:
        return self.rng.getstate()

    def set_state(self, state: object) -> None:
        self.rng.setstate(state)
