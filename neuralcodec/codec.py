"""The codec: image -> .aec bytes and back, loading each model once."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from . import container
from .container import CHUNK_ALPHA, Header
from .errors import AecError
from .image_io import (
    decode_alpha,
    encode_alpha,
    image_to_tensor,
    merge_alpha,
    normalize_mode,
    open_image,
    pad_to_multiple,
    split_alpha,
    tensor_to_image,
)
from .registry import DEFAULT_MODEL, ModelCoder, load_coder

DEFAULT_QUALITY = 75.0
# Limit like Pillow's MAX_IMAGE_PIXELS; override with Codec(max_pixels=...) or --max-pixels.
DEFAULT_MAX_PIXELS = 100_000_000


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AecError("--device cuda was requested but no CUDA device is available")
    return device


@dataclass
class Analysis:
    """An image prepared for encoding. The analysis transform's output is cached: the
    rate level only scales it by gains, so a search for a target size re-runs only the
    latent coding."""

    image: Image.Image
    colour: Image.Image  # the image without alpha
    alpha: bytes | None
    # Per model: (padded x, analysis output); the rate level does not change them.
    features: dict[str, torch.Tensor] = field(default_factory=dict)


class Codec:
    """Loads a model once and encodes/decodes many images.

    >>> codec = Codec()                       # default model, best device
    >>> data = codec.encode(Image.open("photo.png"), quality=60)
    >>> image = codec.decode(data)
    """

    def __init__(
        self,
        model: str | None = None,
        device: str | torch.device | None = "auto",
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        format_version: int = container.VERSION,
    ):
        if format_version not in container.READABLE_VERSIONS:
            raise AecError(f"unknown format version {format_version}")
        self.model_name = model or DEFAULT_MODEL
        self.device = resolve_device(device)
        self.max_pixels = max_pixels
        self.format_version = format_version
        self._coders: dict[str, ModelCoder] = {}

    # -- models ------------------------------------------------------------------------

    def coder(self, name: str | None = None) -> ModelCoder:
        """The loaded model ``name`` (default: the encoding model), loaded on first use."""
        name = name or self.model_name
        coder = self._coders.get(name)
        if coder is None:
            coder = self._coders[name] = load_coder(name, self.device)
        return coder

    def load(self) -> Codec:
        """Load the encoding model now (otherwise it loads on first use)."""
        coder = self.coder()
        if self.format_version not in coder.formats:
            raise AecError(
                f"model '{coder.name}' cannot write format version {self.format_version}"
            )
        return self

    # -- encoding ----------------------------------------------------------------------

    def prepare(self, image: Image.Image | str | Path) -> Analysis:
        if not isinstance(image, Image.Image):
            image = open_image(image)
        image = normalize_mode(image)
        w, h = image.size
        if self.max_pixels is not None and w * h > self.max_pixels:
            raise AecError(
                f"image is {w}x{h} = {w * h} pixels, above the limit of {self.max_pixels} "
                "(raise it with --max-pixels)"
            )
        colour, alpha = split_alpha(image)
        return Analysis(image, colour, encode_alpha(alpha) if alpha is not None else None)

    def padded_input(self, prepared: Analysis, coder: ModelCoder) -> torch.Tensor:
        """The colour image as the model's padded input tensor on the codec's device."""
        x = pad_to_multiple(image_to_tensor(prepared.colour), coder.pad_multiple)
        return x.to(self.device)

    @torch.no_grad()
    def encode_prepared(self, prepared: Analysis, quality: float) -> bytes:
        coder = self.load().coder()
        q = container.quantize_quality(quality)
        features = prepared.features.get(coder.name)
        if features is None:
            features = prepared.features[coder.name] = coder.analyse(
                self.padded_input(prepared, coder)
            )
        chunks = coder.compress(features, q, self.format_version)
        return self._pack(coder, prepared, q, chunks)

    def encode(self, image: Image.Image | str | Path, quality: float = DEFAULT_QUALITY) -> bytes:
        """Compress an image (PIL image or path) at ``quality`` 0..100 into .aec bytes."""
        return self.encode_prepared(self.prepare(image), quality)

    def encode_to_bpp(
        self, image: Image.Image | str | Path, bpp: float, iterations: int = 12
    ) -> tuple[bytes, float]:
        """Highest quality whose whole file is at most ``bpp`` bits per pixel (bisection
        on the continuous quality knob). Returns (data, quality); if even quality 0 is
        larger than the target, returns quality 0's file."""
        if not bpp > 0 or not math.isfinite(bpp):
            raise AecError(f"--bpp must be a positive number, got {bpp}")
        prepared = self.prepare(image)
        w, h = prepared.image.size

        def size_bpp(data: bytes) -> float:
            return 8 * len(data) / (w * h)

        lo_q, hi_q = 0.0, 100.0
        best = self.encode_prepared(prepared, lo_q)
        best_q = lo_q
        if size_bpp(best) > bpp:
            return best, best_q
        top = self.encode_prepared(prepared, hi_q)
        if size_bpp(top) <= bpp:
            return top, hi_q
        for _ in range(iterations):
            mid = round((lo_q + hi_q) / 2, 2)
            if mid in (lo_q, hi_q):
                break
            data = self.encode_prepared(prepared, mid)
            if size_bpp(data) <= bpp:
                lo_q, best, best_q = mid, data, mid
            else:
                hi_q = mid
        return best, best_q

    def _pack(
        self, coder: ModelCoder, prepared: Analysis, q: int, chunks: dict[bytes, bytes]
    ) -> bytes:
        w, h = prepared.image.size
        header = Header(
            model=coder.name,
            fingerprint=coder.fingerprint,
            width=w,
            height=h,
            mode=prepared.image.mode,
            quality=q,
            version=self.format_version,
        )
        chunks = dict(chunks)
        if prepared.alpha is not None:
            chunks[CHUNK_ALPHA] = prepared.alpha
        return container.pack(header, chunks)

    # -- decoding ----------------------------------------------------------------------

    def _check_limits(self, header: Header) -> None:
        pixels = header.width * header.height
        if self.max_pixels is not None and pixels > self.max_pixels:
            raise AecError(
                f"file holds a {header.width}x{header.height} image, above the limit of "
                f"{self.max_pixels} pixels (raise it with --max-pixels)"
            )

    def decode_latents(self, data: bytes):
        """Parse and entropy-decode, without the synthesis transform: (header, latents of
        the model's family)."""
        parsed = container.unpack(bytes(data))
        coder = self._coder_for(parsed.header)
        return parsed.header, self._latents(coder, parsed)

    def _coder_for(self, header: Header) -> ModelCoder:
        self._check_limits(header)
        coder = self.coder(header.model)
        if coder.fingerprint != header.fingerprint:
            raise AecError(
                f"file was made with other weights of model '{header.model}' "
                f"(file {header.fingerprint.hex()}, installed {coder.fingerprint.hex()})"
            )
        if header.version not in coder.formats:
            raise AecError(
                f"model '{coder.name}' cannot read format version {header.version}"
            )
        return coder

    @staticmethod
    def _padded_size(header: Header, coder: ModelCoder) -> tuple[int, int]:
        m = coder.pad_multiple
        return -(-header.height // m) * m, -(-header.width // m) * m

    def _latents(self, coder: ModelCoder, parsed: container.AecFile):
        header = parsed.header
        size = self._padded_size(header, coder)
        return coder.decompress_latents(parsed.chunks, size, header.quality, header.version)

    @torch.no_grad()
    def decode(self, data: bytes) -> Image.Image:
        """Restore the image stored in .aec bytes."""
        parsed = container.unpack(bytes(data))
        header = parsed.header
        coder = self._coder_for(header)
        x_hat = coder.synthesize(self._latents(coder, parsed), header.quality)
        x_hat = x_hat[:, :, : header.height, : header.width]
        colour = tensor_to_image(x_hat, "L" if header.mode in ("L", "LA") else "RGB")
        alpha = None
        if header.mode in ("LA", "RGBA"):
            alpha = decode_alpha(parsed.chunks[CHUNK_ALPHA], (header.width, header.height))
        return merge_alpha(colour, alpha)


def describe(data: bytes) -> dict:
    """Header facts and chunk sizes of .aec bytes, without decoding."""
    parsed = container.unpack(bytes(data))
    h = parsed.header
    return {
        "format_version": h.version,
        "model": h.model,
        "fingerprint": h.fingerprint.hex(),
        "width": h.width,
        "height": h.height,
        "mode": h.mode,
        "quality": h.quality_value,
        "bytes": len(data),
        "bpp": 8 * len(data) / (h.width * h.height),
        "chunks": {tag.decode(): len(p) for tag, p in parsed.chunks.items()},
    }


__all__ = ["Codec", "DEFAULT_QUALITY", "DEFAULT_MAX_PIXELS", "describe"]
