"""The codec: image -> .aec bytes and back, loading each model once."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from . import container
from .container import CHUNK_ALPHA, CHUNK_ESCAPE, CHUNK_HYPER, CHUNK_LATENT, Header
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
from .integer_net import IntegerParamPath
from .latent_codec import DecodedLatents, FloatParamPath, LatentCodec, LatentStreams
from .model import PAD_MULTIPLE, rate_level
from .registry import DEFAULT_MODEL, LoadedModel, load_model

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
class _Engine:
    loaded: LoadedModel
    latent_codecs: dict[int, LatentCodec]

    def latent(self, version: int) -> LatentCodec:
        """The latent codec of a format version (built on first use)."""
        codec = self.latent_codecs.get(version)
        if codec is None:
            model = self.loaded.model
            if version == 1:
                path = FloatParamPath(model)
            else:
                path = IntegerParamPath(model, self.loaded.int_gain_z_inv,
                                        self.loaded.weight_shifts)
            codec = self.latent_codecs[version] = LatentCodec(model, path)
        return codec


@dataclass
class Analysis:
    """An image prepared for encoding. The analysis transform's output is cached: the
    rate level only scales it by gains, so a search for a target size re-runs only the
    latent coding."""

    image: Image.Image
    x: torch.Tensor  # padded (1, 3, H, W)
    alpha: bytes | None
    features: torch.Tensor | None = None  # g_a(x), before the gains


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
        self._engines: dict[str, _Engine] = {}

    # -- models ------------------------------------------------------------------------

    def _engine(self, name: str) -> _Engine:
        engine = self._engines.get(name)
        if engine is None:
            loaded = load_model(name, self.device)
            engine = _Engine(loaded, {})
            self._engines[name] = engine
        return engine

    def load(self) -> Codec:
        """Load the encoding model now (otherwise it loads on first use)."""
        self._engine(self.model_name)
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
        x = pad_to_multiple(image_to_tensor(colour), PAD_MULTIPLE)
        return Analysis(image, x, encode_alpha(alpha) if alpha is not None else None)

    @torch.no_grad()
    def encode_prepared(self, prepared: Analysis, quality: float) -> bytes:
        engine = self._engine(self.model_name)
        model = engine.loaded.model
        q = container.quantize_quality(quality)
        level = rate_level(q / container.QUALITY_SCALE, model.config.levels)
        lv = torch.tensor([level], device=self.device)
        if prepared.features is None:
            prepared.features = model.g_a(prepared.x.to(self.device))
        y = prepared.features * model.gain_y(lv)
        streams, _ = engine.latent(self.format_version).compress(y, q)
        return self._pack(engine, prepared, q, streams)

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

    def _pack(self, engine: _Engine, prepared: Analysis, q: int, s: LatentStreams) -> bytes:
        w, h = prepared.image.size
        header = Header(
            model=engine.loaded.name,
            fingerprint=engine.loaded.fingerprint,
            width=w,
            height=h,
            mode=prepared.image.mode,
            quality=q,
            version=self.format_version,
        )
        chunks = {CHUNK_HYPER: s.z, CHUNK_LATENT: s.y}
        if s.escapes:
            chunks[CHUNK_ESCAPE] = s.escapes
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

    def decode_latents(self, data: bytes) -> tuple[Header, DecodedLatents]:
        """Parse and entropy-decode, without the synthesis transform."""
        parsed = container.unpack(bytes(data))
        return parsed.header, self._latents(parsed)

    def _latents(self, parsed: container.AecFile) -> DecodedLatents:
        header = parsed.header
        self._check_limits(header)
        engine = self._engine(header.model)
        if engine.loaded.fingerprint != header.fingerprint:
            raise AecError(
                f"file was made with other weights of model '{header.model}' "
                f"(file {header.fingerprint.hex()}, installed {engine.loaded.fingerprint.hex()})"
            )
        hp = -(-header.height // PAD_MULTIPLE) * PAD_MULTIPLE
        wp = -(-header.width // PAD_MULTIPLE) * PAD_MULTIPLE
        streams = LatentStreams(
            parsed.chunks[CHUNK_HYPER],
            parsed.chunks[CHUNK_LATENT],
            parsed.chunks.get(CHUNK_ESCAPE, b""),
        )
        latent = engine.latent(header.version)
        return latent.decompress(streams, (hp // 16, wp // 16), header.quality)

    @torch.no_grad()
    def decode(self, data: bytes) -> Image.Image:
        """Restore the image stored in .aec bytes."""
        parsed = container.unpack(bytes(data))
        header, latents = parsed.header, self._latents(parsed)
        model = self._engine(header.model).loaded.model
        level = rate_level(header.quality_value, model.config.levels)
        lv = torch.tensor([level], device=self.device)
        x_hat = model.synthesis(latents.y_hat.to(self.device), lv)
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
