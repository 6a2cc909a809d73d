"""The codec: image -> .aec bytes and back, loading each model once."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from ..errors import AecError, CorruptFileError, needs_torch, torch_missing
from ..families.base import ModelCoder, RatePoint
from ..families.shipped import missing_model, shipped_model
from ..families.zoo import DEFAULT_MODEL, is_installed, load_coder
from ..format import container
from ..format.chunks import CHUNK_EXACT, CHUNK_EXIF, CHUNK_ICC, CHUNK_RESIDUAL
from ..format.container import Header
from ..format.grid import TileGrid
from ..format.inspect import residual_layer
from ..format.quality import DEFAULT_QUALITY, STORED_MAX, from_stored, to_stored
from ..format.requirement import CHUNK_NEED, FORMAT_SINCE, RESIDUAL_SINCE, Requirement
from ..format.residual import exact_marker, wants_exact
from ..io.arrays import padded_size
from ..io.files import DataSource, as_bytes
from ..io.images import check_pixel_limit, merge_alpha, split_alpha, warn
from ..io.metadata import attach_metadata, stripped_exif
from ..stages import stage
from ..version import parse_version
from .options import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_TILE_PIXELS,
    DEFAULT_TILE_OVERLAP,
    DEFAULT_TILE_SIZE,
    MAX_ERROR_RANGE,
    RESIDUAL_BASE_MODELS,
    RESIDUAL_BASE_QUALITIES,
    EncodeOptions,
    OptionError,
    check_effort,
)
from .prepare import Analysis, ImageSource, prepare_image
from .rate_search import encode_to_target, meets
from .residual_layer import (
    colour_array,
    decode_region,
    encode_region,
    largest_error,
    psnr_with,
)
from .tiles import analyse_tile, blend_mask, decode_tile, encode_tile, model_input
from .workers import TileWorkers, WorkerPools

LOST_TILE_GREY = 128
# Bisection steps of a rate target's search on short fits (quality to within 100/2**6).
SHORT_SEARCH_STEPS = 6

Progress = Callable[[int, int], None]  # (tiles done, tiles in all)
# A base quality tried for the residual layer: (quality, file bytes, candidates in all).
CandidateProgress = Callable[[float, int, int], None]


def cuda_available() -> bool:
    """Whether torch sees a CUDA device. Where none can be (macOS; Linux without a loaded
    NVIDIA driver) the answer is no without importing torch, so that coding on a CPU
    never loads it."""
    if "torch" not in sys.modules and (sys.platform == "darwin" or (
            sys.platform.startswith("linux")
            and not os.path.exists("/proc/driver/nvidia/version"))):
        return False
    try:
        import torch
    except ModuleNotFoundError as exc:
        if torch_missing(exc):
            return False
        raise
    return torch.cuda.is_available()


def resolve_device(device: Any) -> str:
    """The device the transforms run on, as torch names it ("cpu", "cuda", "cuda:1"):
    ``None`` or "auto" is CUDA where available, else the CPU."""
    if device in (None, "auto"):
        return "cuda" if cuda_available() else "cpu"
    name = str(device)  # a torch.device or its name
    if name.split(":")[0] == "cuda" and not cuda_available():
        raise AecError("device cuda was requested but no CUDA device is available",
                       field="device")
    if name != "cpu":
        try:
            import torch
        except ModuleNotFoundError as exc:
            if torch_missing(exc):
                raise needs_torch(f"device '{name}'") from None
            raise
        try:
            name = str(torch.device(name))
        except RuntimeError:
            raise AecError(f"unknown device '{name}'", field="device") from None
    return name


@dataclass
class DecodeReport:
    """What :meth:`Codec.decode_partial` could not restore."""

    tiles: int
    lost_tiles: list[int]  # filled with grey
    problems: list[str]  # damaged chunks and failed tiles, in words

    def __str__(self) -> str:
        return (f"{len(self.lost_tiles)} of {self.tiles} tiles lost "
                f"({'; '.join(self.problems)})")


class Codec:
    """Loads a model once and encodes/decodes many images.

    >>> codec = Codec()                       # default model, best device
    >>> data = codec.encode(Image.open("photo.png"), quality=60)
    >>> image = codec.decode(data)

    Images larger than ``tile_size`` are coded as independent tiles (format version 3),
    in ``workers`` processes when there are many (None: automatic, 1: in this process).
    """

    def __init__(
        self,
        model: str | None = None,
        device: Any = "auto",
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        format_version: int = container.VERSION,
        tile_size: int = DEFAULT_TILE_SIZE,
        workers: int | None = None,
        max_tile_pixels: int = DEFAULT_MAX_TILE_PIXELS,
        tile_overlap: int = DEFAULT_TILE_OVERLAP,
    ):
        if format_version not in container.READABLE_VERSIONS:
            raise AecError(f"unknown format version {format_version}")
        # Never write tiles that a decoder with default limits would refuse.
        coded = tile_size + 2 * tile_overlap
        if not (tile_size > 0 and coded * coded <= DEFAULT_MAX_TILE_PIXELS):
            largest = math.isqrt(DEFAULT_MAX_TILE_PIXELS) - 2 * tile_overlap
            raise AecError(f"tile size {tile_size} is outside 1..{largest}")
        if not 0 <= 2 * tile_overlap <= tile_size:
            raise AecError(f"tile overlap {tile_overlap} is outside 0..{tile_size // 2}")
        if workers is not None and workers < 1:
            raise AecError(f"workers must be at least 1, got {workers}", field="workers")
        self.model_name = model or DEFAULT_MODEL
        self.device = resolve_device(device)
        self.max_pixels = max_pixels
        self.format_version = format_version
        self.tile_size = tile_size
        self.tile_overlap = tile_overlap
        self.workers = workers
        self.max_tile_pixels = max_tile_pixels
        self._coders: dict[str, ModelCoder] = {}
        self._pools = WorkerPools()

    # -- models and workers ------------------------------------------------------------

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

    def _pool(self, model: str, tiles: int) -> TileWorkers | None:
        """Worker processes for an image of ``tiles`` tiles, or None to code in-process."""
        if self.device != "cpu":
            return None
        return self._pools.get(model, tiles, self.workers)

    def close(self) -> None:
        """Stop worker processes (they are also stopped when the program exits)."""
        self._pools.close()

    # -- encoding ----------------------------------------------------------------------

    def prepare(self, image: ImageSource, frame: int | None = None, exact: bool = False
                ) -> Analysis:
        """An image (or path) checked against the pixel limit, in a native mode;
        ``frame`` picks one of a file's frames (see :func:`~neuralcodec.io.images.open_image`).
        :meth:`encode_with` takes it as its image, and its :meth:`Analysis.psnr`
        measures a decoding against what was coded. ``exact`` (for a lossless or
        near-lossless encode) refuses inputs whose samples would lose precision."""
        return prepare_image(image, self.max_pixels, frame, exact)

    def analyse_together(self, prepared: list[Analysis]) -> None:
        """The analysis transform of one-tile images of equal size, cached in each (a rate
        search or a quality sweep then runs only the latent coding): one batched call
        where the coder batches (torch, which pays on CUDA), else one per image."""
        coder = self.load().coder()
        inputs = [self.padded_input(p, coder) for p in prepared]
        batched = getattr(coder, "analyse_batch", None)
        analysed = batched(inputs) if batched else [coder.analyse(x) for x in inputs]
        for one, features in zip(prepared, analysed, strict=True):
            one.features[coder.name] = features

    def padded_input(self, prepared: Analysis, coder: ModelCoder) -> Any:
        """The colour image as the model's padded input array."""
        return model_input(coder, prepared.colour)

    def grid(self, width: int, height: int) -> TileGrid:
        """How an image of this size is tiled in the format being written."""
        if self.format_version < container.TILED_VERSION:
            return TileGrid(width, height, width, height)
        return TileGrid(width, height, self.tile_size, self.tile_size, self.tile_overlap)

    def _features(self, prepared: Analysis, coder: ModelCoder, grid: TileGrid, index: int,
                  tile: Image.Image, cache: bool) -> Any:
        """The tile's analysis output from the cache, computed into it when ``cache``."""
        if len(grid) == 1:
            store = prepared.features
            key: str | int = coder.name
        else:
            store = prepared.tile_features.setdefault(coder.name, {})
            key = index
        features = store.get(key)
        if features is None and cache:
            features = store[key] = analyse_tile(coder, split_alpha(tile)[0])
        return features

    def check_effort(self, effort: int) -> None:
        """Refuse an effort level the encoding model does not offer."""
        check_effort(effort, self.model_name, self.load().coder().max_effort)

    def encode_prepared(self, prepared: Analysis, quality: float, cache: bool = True,
                        progress: Progress | None = None, effort: int = 1,
                        strip: bool = False) -> bytes:
        """Encode a prepared image. ``cache`` keeps each tile's analysis output in
        ``prepared`` for another quality (memory: about 3 bytes per pixel); ``effort``
        and ``strip`` (see :meth:`encode`)."""
        self.check_effort(effort)
        coder = self.coder()
        q = to_stored(quality)
        point = rate_point(q)
        grid = self.grid(*prepared.image.size)
        pool = None if cache else self._pool(coder.name, len(grid))
        tiles: list[dict[bytes, bytes]] = [{} for _ in range(len(grid))]
        crops = ((i, prepared.image.crop(grid.coded_box(i))) for i in range(len(grid)))
        if pool is not None:
            jobs = pool.encode(crops, point, self.format_version, effort)
            for done, (i, future) in enumerate(jobs, 1):
                tiles[i] = future.result()
                if progress:
                    progress(done, len(grid))
        else:
            for i, tile in crops:
                features = self._features(prepared, coder, grid, i, tile, cache)
                tiles[i] = encode_tile(coder, tile, point, self.format_version, features,
                                       effort)
                if progress:
                    progress(i + 1, len(grid))
        return pack_file(coder, prepared, q, grid, tiles, self.format_version, strip,
                         exact=self._writes_exact(coder))

    def _writes_exact(self, coder: ModelCoder) -> bool:
        """Whether new files of this model say "decode with the exact synthesis" (an
        ``exsy`` chunk): the base models of the residual layer, in version 3."""
        return (coder.name in RESIDUAL_BASE_MODELS and hasattr(coder, "synthesize_exact")
                and self.format_version >= container.TILED_VERSION)

    def _check_residual_model(self) -> ModelCoder:
        coder = self.load().coder()
        if not self._writes_exact(coder):
            what = (f"model '{coder.name}'" if coder.name not in RESIDUAL_BASE_MODELS
                    else f"format version {self.format_version}")
            raise OptionError(f"{{lossless}} and {{max_error}} need the base model "
                              f"{', '.join(RESIDUAL_BASE_MODELS)} in format version 3, "
                              f"not {what}", field="model")
        return coder

    def encode_residual(self, prepared: Analysis, max_error: int,
                        quality: float | None = None, progress: Progress | None = None,
                        effort: int = 1, strip: bool = False,
                        candidates: CandidateProgress | None = None) -> tuple[bytes, float]:
        """(file, base quality) of a prepared image with the residual layer: every
        decoded sample within ``max_error`` K of the image (0: lossless). The base layer
        is coded at ``quality``, or at the one of RESIDUAL_BASE_QUALITIES whose whole
        file is smallest (``candidates`` hears of each). The file is decoded once before
        it is returned: one that does not decode within K is never returned."""
        self._check_residual_model()
        qualities = (quality,) if quality is not None else RESIDUAL_BASE_QUALITIES
        best: tuple[bytes, float, Image.Image] | None = None
        for q in qualities:
            base, decoded = self._exact_base(prepared, q, effort, strip,
                                             cache=len(qualities) > 1, progress=progress)
            data = self._add_residual(prepared, base, max_error, decoded)
            if candidates:
                candidates(q, len(data), len(qualities))
            if best is None or len(data) < len(best[0]):
                best = data, q, decoded
        assert best is not None
        self._check_decodes_within(prepared, best[0], max_error, best[2])
        return best[:2]

    def _exact_base(self, prepared: Analysis, quality: float, effort: int, strip: bool,
                    cache: bool = True, progress: Progress | None = None
                    ) -> tuple[bytes, Image.Image]:
        """A base-layer file of ``quality`` and its final reconstruction, as a decoder
        gets it (the residual layer is coded against that)."""
        base = self.encode_prepared(prepared, quality, cache=cache, progress=progress,
                                    effort=effort, strip=strip)
        return base, self._decode(base, salvage=False, progress=None)[0]

    def _add_residual(self, prepared: Analysis, base: bytes, max_error: int,
                      decoded: Image.Image) -> bytes:
        """The file ``base`` (an exact one) with the residual layer of K = ``max_error``
        over its final reconstruction (``decoded``, as a decoder gets it from ``base``)."""
        parsed = container.unpack(base)
        header = parsed.header
        xhat = colour_array(split_alpha(decoded)[0])
        image = colour_array(prepared.colour)
        grid = header.grid
        quality = header.quality_value
        jobs = []
        for i in range(len(grid)):
            left, top, right, bottom = grid.box(i)
            region = np.s_[top:bottom, left:right]
            jobs.append((i, (image[region], xhat[region], max_error, quality)))
        pool = self._pool(header.model, len(grid))
        results = (pool.run(encode_region, jobs) if pool is not None
                   else ((i, _run_now(encode_region, *args)) for i, args in jobs))
        tiles = [dict(t) for t in parsed.tiles]
        for i, future in results:
            tiles[i][CHUNK_RESIDUAL] = future.result()
        chunks = dict(parsed.chunks)
        need = Requirement.unpack(chunks[CHUNK_NEED])
        chunks[CHUNK_NEED] = Requirement(max(need.version, RESIDUAL_SINCE),
                                         need.shipped_model).pack()
        with stage("container"):
            return container.pack(header, tiles, chunks)

    def _check_decodes_within(self, prepared: Analysis, data: bytes, max_error: int,
                              base: Image.Image) -> None:
        """Decode a residual-layer file's residual once, over its base layer ``base`` as
        decoded from the same base bytes (by this very code, which is exact); an
        AecError unless every sample is within K of the image (alpha exactly)."""
        parsed = container.unpack(data)
        every_tile = list(range(len(parsed.tiles)))
        decoded = self._decode_residual(base, parsed.header,
                                        self._residual_chunks(parsed, every_tile), [], [],
                                        salvage=False)
        colour, alpha = split_alpha(decoded)
        worst = largest_error(colour_array(prepared.colour), colour_array(colour))
        _, alpha_in = split_alpha(prepared.image)
        if alpha is not None and alpha_in is not None:
            worst = max(worst, 255 * largest_error(np.asarray(alpha_in), np.asarray(alpha)))
        if worst > max_error:
            raise AecError(f"internal error: the residual layer decoded {worst} levels from "
                           f"the image, above the maximum error {max_error}; no file "
                           "written (please report it)")

    def _residual_for_psnr(self, prepared: Analysis, value: float, effort: int,
                           strip: bool) -> tuple[bytes, float]:
        """(file, base quality) of the residual layer with the largest K whose PSNR (known
        before entropy coding) reaches ``value``, over the base of
        RESIDUAL_BASE_QUALITIES that makes the smallest file of that K."""
        image = colour_array(prepared.colour)
        bases = []
        for q in RESIDUAL_BASE_QUALITIES:
            base, decoded = self._exact_base(prepared, q, effort, strip)
            bases.append((q, base, decoded, colour_array(split_alpha(decoded)[0])))
        for max_error in range(MAX_ERROR_RANGE[1], -1, -1):
            reaching = [b for b in bases if psnr_with(image, b[3], max_error) >= value]
            if reaching:
                break
        files = [(self._add_residual(prepared, base, max_error, decoded), q, decoded)
                 for q, base, decoded, _ in reaching]
        data, q, decoded = min(files, key=lambda f: len(f[0]))
        self._check_decodes_within(prepared, data, max_error, decoded)
        return data, q

    def encode(self, image: ImageSource, quality: float | None = None,
               progress: Progress | None = None, effort: int = 1, strip: bool = False,
               lossless: bool = False, max_error: int | None = None) -> bytes:
        """Compress an image (PIL image or path) at ``quality`` 0..100 into .aec bytes.

        ``effort`` 1 (the default) is one pass of the analysis transform; higher levels
        (up to the model's ``max_effort``) spend encoding time refining the latents for
        this image to make a smaller file for the same quality. The decoder, and its
        speed, are the same at every effort. The image's ICC profile and EXIF block are
        stored; ``strip`` keeps of the EXIF block only a non-default orientation.
        ``lossless`` (decoded exactly) and ``max_error`` K (every sample within K) add
        the residual layer; ``quality`` (None: 75) is then the base layer's, or None to
        let the encoder pick it (see :meth:`encode_residual`)."""
        options = EncodeOptions(quality=quality, effort=effort, model=self.model_name,
                                strip=strip, lossless=lossless, max_error=max_error)
        return self.encode_with(image, options, progress)[0]

    def encode_to_target(self, image: ImageSource, bpp: float | None = None,
                         size: int | None = None, psnr: float | None = None,
                         effort: int = 1) -> tuple[bytes, float]:
        """(file, quality) for exactly one target: at most ``bpp`` bits per pixel or
        ``size`` bytes (the highest quality that fits), or at least ``psnr`` dB of RGB
        PSNR (the smallest file that reaches it), each file made at ``effort``. A target
        no quality meets raises AecError naming the nearest reachable value."""
        options = EncodeOptions(bpp=bpp, size=size, psnr=psnr, effort=effort,
                                model=self.model_name)
        options.require_target()
        return self.encode_with(image, options)

    def encode_with(self, image: ImageSource, options: EncodeOptions,
                    progress: Progress | None = None,
                    candidates: CandidateProgress | None = None) -> tuple[bytes, float]:
        """(file, quality) of an image encoded as ``options`` ask: at their quality, or
        at the quality that meets their target, at their effort and, for a file given by
        path, of their frame; ``progress`` follows the tiles of an encode at a quality.
        The model, device, tile size and pixel limit are this codec's: options that name
        another model are refused (:meth:`EncodeOptions.codec` makes their codec). With
        the residual layer (``max_error``, ``lossless``, or a ``psnr`` target above the
        base layer's reach), the quality returned is the base layer's, and
        ``candidates`` hears of each base quality tried (see :meth:`encode_residual`)."""
        if options.model is not None and options.model != self.model_name:
            raise AecError(f"the options are for model '{options.model}', not this "
                           f"codec's '{self.model_name}'", field="model")
        max_error = options.residual_error
        prepared = self.prepare(image, options.frame, exact=max_error is not None)
        if max_error is not None:
            return self.encode_residual(prepared, max_error, options.quality, progress,
                                        options.effort, options.strip, candidates)
        target = options.target
        if target is None:
            quality = options.at_quality
            assert quality is not None
            data = self.encode_prepared(prepared, quality, cache=False, progress=progress,
                                        effort=options.effort, strip=options.strip)
            return data, quality
        coder = self.load().coder()
        short_fits = getattr(coder, "short_fits", None)
        if short_fits is None:
            def encode(q: float) -> bytes:
                return self.encode_prepared(prepared, q, effort=options.effort,
                                            strip=options.strip)

            if target[0] != "psnr" or not self._writes_exact(coder):
                return encode_to_target(prepared, encode, self.decode, *target)
            return self._to_psnr(prepared, encode, target[1], options)
        # A family whose every encode is a fit (overfitted): the quality is searched on
        # short fits, to 100/2**SHORT_SEARCH_STEPS, then the image is fitted in full once;
        # if that file misses the target, the short fit's, which meets it, is kept.
        with short_fits():
            found, quality = encode_to_target(
                prepared, lambda q: self.encode_prepared(prepared, q, cache=False,
                                                         effort=options.effort,
                                                         strip=options.strip),
                self.decode, *target, iterations=SHORT_SEARCH_STEPS)
        data = self.encode_prepared(prepared, quality, cache=False, progress=progress,
                                    effort=options.effort, strip=options.strip)
        return (data if meets(prepared, self.decode, *target, data) else found), quality

    def _to_psnr(self, prepared: Analysis, encode: Callable[[float], bytes], value: float,
                 options: EncodeOptions) -> tuple[bytes, float]:
        """(file, quality) of the smallest file of at least ``value`` dB from a model
        whose files decode with the exact synthesis: the search measures each try with
        the float synthesis (2.4 times faster, within a thousandth of a dB), then the
        file found with the exact one, moving up by 0.01 while it falls short; beyond
        quality 100's reach, the residual layer."""
        residual: list[tuple[bytes, float]] = []

        def beyond() -> tuple[bytes, float]:
            residual.append(self._residual_for_psnr(prepared, value, options.effort,
                                                    options.strip))
            return residual[0]

        def decode_float(data: bytes) -> Image.Image:
            return self._decode(data, salvage=False, progress=None, float_synthesis=True)[0]

        data, q = encode_to_target(prepared, encode, decode_float, "psnr", value,
                                   beyond=beyond)
        while not residual and prepared.psnr(self.decode(data)) < value:
            if q >= 100:
                return beyond()
            q = min(100.0, round(q + 0.01, 2))
            data = encode(q)
        return data, q

    # -- decoding ----------------------------------------------------------------------

    def _check_limits(self, header: Header) -> None:
        """Every size a decode will allocate for, checked before it allocates anything."""
        check_pixel_limit(header.width, header.height, self.max_pixels,
                          "the file's image")
        tile_width, tile_height = header.grid.largest_coded_tile
        tile_pixels = tile_width * tile_height
        if tile_pixels > self.max_tile_pixels:
            what = "tiles" if header.version >= container.TILED_VERSION else "untiled image"
            raise AecError(
                f"file decodes {what} of {tile_pixels} pixels at once, above the limit of "
                f"{self.max_tile_pixels}", field="max_tile_pixels")

    def decode_latents(self, data: bytes, tile: int = 0):
        """Parse and entropy-decode one tile (default: the first, the whole image of an
        untiled file) without the synthesis transform: (header, latents of the model's
        family)."""
        parsed = container.unpack(as_bytes(data))
        coder = self._coder_for(parsed.header, parsed.chunks)
        header = parsed.header
        size = padded_size(*_size(header.grid.coded_box(tile)), coder.pad_multiple)
        return header, coder.decompress_latents(parsed.tiles[tile], size,
                                                rate_point(header.quality), header.version)

    def _coder_for(self, header: Header, chunks: dict[bytes, bytes]) -> ModelCoder:
        """The loaded model a file names, after its limits are checked; a model that is
        not here fails naming what brings it (from the file's need chunk, if any)."""
        self._check_limits(header)
        if header.model not in self._coders and not is_installed(header.model):
            needs, shipped = None, None
            if CHUNK_NEED in chunks:
                requirement = Requirement.unpack(chunks[CHUNK_NEED])
                needs, shipped = requirement.text, requirement.shipped_model
            raise AecError(missing_model(header.model, header.fingerprint.hex(), needs,
                                         shipped))
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

    def decode(self, data: DataSource, progress: Progress | None = None) -> Image.Image:
        """Restore the image stored in a .aec file (bytes, a path or a binary file
        object); any damage raises CorruptFileError naming the damaged chunk."""
        return self._decode(as_bytes(data), salvage=False, progress=progress)[0]

    def decode_partial(self, data: DataSource, progress: Progress | None = None
                       ) -> tuple[Image.Image, DecodeReport]:
        """Restore what survives of a damaged file: tiles whose chunks are intact are
        decoded, lost tiles are filled with grey (which their neighbours' overlap fades
        into) and listed in the report. The header and chunk directory must be intact;
        version-1/2 files are decoded strictly."""
        return self._decode(as_bytes(data), salvage=True, progress=progress)

    def _decode(self, data: bytes, salvage: bool, progress: Progress | None,
                float_synthesis: bool = False) -> tuple[Image.Image, DecodeReport]:
        """The decoded image and what was lost; ``float_synthesis`` decodes a base-layer
        file that asks for the exact synthesis with the float one (for a search's
        tries; a residual layer always needs the exact one)."""
        with stage("container"):
            parsed = container.unpack(data, salvage=salvage)
        header = parsed.header
        coder = self._coder_for(header, parsed.chunks)
        grid = header.grid
        problems = [str(lost) for lost in parsed.lost]
        damaged = {c.tile for c in parsed.lost if c.tile != container.IMAGE_WIDE}
        lost_tiles = sorted(damaged)
        todo = [i for i in range(len(grid)) if i not in damaged]
        grey = (LOST_TILE_GREY,) * len(header.mode)
        if "A" in header.mode:
            grey = grey[:-1] + (255,)
        out = Image.new(header.mode, (header.width, header.height), grey)

        def tile_failed(i: int, exc: CorruptFileError) -> None:
            if not salvage:
                where = f"tile {i} of {len(grid)}: " if len(grid) > 1 else ""
                raise CorruptFileError(f"{where}{exc}") from None
            lost_tiles.append(i)
            problems.append(f"tile {i} ({exc})")

        residual = self._residual_chunks(parsed, todo)
        exact = bool(residual) or (wants_exact(parsed.chunks.get(CHUNK_EXACT))
                                   and not float_synthesis)
        if exact and not hasattr(coder, "synthesize_exact"):
            if residual:
                raise CorruptFileError(f"model '{coder.name}' has no exact synthesis, which "
                                       "its residual layer needs")
            exact = False  # decoded as a release without the marker would: within a level
        jobs = ((i, parsed.tiles[i], _size(grid.coded_box(i))) for i in todo)
        pool = self._pool(header.model, len(todo))
        point = rate_point(header.quality)
        if pool is not None:
            results = pool.decode(jobs, point, header.version, header.mode, exact)
        else:
            results = ((i, _run_now(decode_tile, coder, chunks, size, point, header.version,
                                    header.mode, exact)) for i, chunks, size in jobs)
        for done, (i, future) in enumerate(results, 1):
            try:
                tile = future.result()
            except CorruptFileError as exc:
                tile_failed(i, exc)
            else:  # in raster order, so the left and upper neighbours are in place
                out.paste(tile, grid.coded_box(i)[:2], blend_mask(grid, i))
            if progress:
                progress(done, len(todo))
        if residual:
            out = self._decode_residual(out, header, residual, lost_tiles, problems,
                                        salvage)
        attach_metadata(out, parsed.chunks.get(CHUNK_ICC), parsed.chunks.get(CHUNK_EXIF),
                        warn)
        return out, DecodeReport(len(grid), sorted(lost_tiles), problems)

    @staticmethod
    def _residual_chunks(parsed: container.AecFile, todo: list[int]) -> dict[int, bytes]:
        """Each tile's ``RESD`` chunk; none, or one for every tile to decode (a file with
        the layer in some tiles only is damaged)."""
        found = {i: parsed.tiles[i][CHUNK_RESIDUAL] for i in todo
                 if CHUNK_RESIDUAL in parsed.tiles[i]}
        if found and len(found) < len(todo):
            missing = next(i for i in todo if i not in found)
            raise CorruptFileError(f"chunk RESD of tile {missing} is missing")
        residual_layer([parsed.tiles[i] for i in found])  # one K and model throughout
        return found

    def _decode_residual(self, base: Image.Image, header: Header, chunks: dict[int, bytes],
                         lost_tiles: list[int], problems: list[str], salvage: bool
                         ) -> Image.Image:
        """The residual layer over the final base reconstruction ``base``, tile box by
        tile box (in workers for many tiles). With ``salvage``, a box that a lost tile's
        coded box reaches keeps its base pixels (its reconstruction is not the encoder's)
        and is reported, as is one whose residual fails."""
        grid = header.grid
        colour, alpha = split_alpha(base)
        xhat = colour_array(colour)
        out = xhat.copy()
        lost = [grid.coded_box(j) for j in lost_tiles]

        def reached(box: tuple[int, int, int, int]) -> bool:
            return any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3]
                       for b in lost)

        quality = header.quality_value
        jobs = []
        for i in sorted(chunks):
            box = grid.box(i)
            if reached(box):
                problems.append(f"tile {i} (residual layer skipped: a tile it overlaps is "
                                "lost)")
                continue
            left, top, right, bottom = box
            jobs.append((i, (chunks[i], xhat[top:bottom, left:right], quality)))
        pool = self._pool(header.model, len(jobs))
        with stage("residual layer"):
            results = (pool.run(decode_region, jobs) if pool is not None
                       else ((i, _run_now(decode_region, *args)) for i, args in jobs))
            for i, future in results:
                left, top, right, bottom = grid.box(i)
                try:
                    out[top:bottom, left:right] = future.result()
                except CorruptFileError as exc:
                    if not salvage:
                        where = f"tile {i} of {len(grid)}: " if len(grid) > 1 else ""
                        raise CorruptFileError(f"{where}{exc}") from None
                    problems.append(f"tile {i} (residual layer: {exc})")
        restored = Image.fromarray(out[..., 0] if out.shape[2] == 1 else out,
                                   "L" if out.shape[2] == 1 else "RGB")
        return merge_alpha(restored, alpha)


def rate_point(stored_quality: int) -> RatePoint:
    """Where a stored quality (:mod:`..format.quality`) codes on a model's rate range:
    the one place a quality becomes a rate; the families see only this."""
    return RatePoint(stored_quality, STORED_MAX,
                     from_stored(stored_quality) / from_stored(STORED_MAX))


def pack_file(coder: ModelCoder, prepared: Analysis, q: int, grid: TileGrid,
              tiles: list[dict[bytes, bytes]], version: int, strip: bool = False,
              exact: bool = False) -> bytes:
    """The file of an encoded image: header, tiles' chunks and metadata (with ``strip``,
    of the EXIF block only a non-default orientation; with ``exact``, the marker that
    asks for the exact synthesis)."""
    w, h = prepared.image.size
    tiled = version >= container.TILED_VERSION
    header = Header(
        model=coder.name,
        fingerprint=coder.fingerprint,
        width=w,
        height=h,
        mode=prepared.image.mode,
        quality=q,
        version=version,
        tile_width=grid.tile_width if tiled else 0,
        tile_height=grid.tile_height if tiled else 0,
        tile_overlap=grid.overlap if tiled else 0,
    )
    metadata = {}
    if tiled:  # versions 1 and 2 have no place for metadata or the need chunk
        exif = stripped_exif(prepared.exif) if strip else prepared.exif
        metadata = {tag: value for tag, value in (
            (CHUNK_ICC, prepared.icc_profile), (CHUNK_EXIF, exif)) if value}
        metadata[CHUNK_NEED] = requirement(coder, version).pack()
        if exact:
            metadata[CHUNK_EXACT] = exact_marker()
    with stage("container"):
        return container.pack(header, tiles, metadata)


def requirement(coder: ModelCoder, version: int) -> Requirement:
    """What a file of this model and container version needs: the aec version that
    introduced the later of the two (a model of one's own needs only the format)."""
    entry = shipped_model(coder.name)
    shipped = entry is not None and entry.fingerprint == coder.fingerprint.hex()
    needs = FORMAT_SINCE[version]
    if shipped:
        assert entry is not None
        needs = max(needs, parse_version(entry.since))
    return Requirement(needs, shipped)


def _size(box: tuple[int, int, int, int]) -> tuple[int, int]:
    left, top, right, bottom = box
    return right - left, bottom - top


def _run_now(fn: Callable, *args) -> Future:
    """Run ``fn`` here, in the shape of a worker's result (one path for both)."""
    future: Future = Future()
    try:
        future.set_result(fn(*args))
    except Exception as exc:  # re-raised by future.result() where it is handled
        future.set_exception(exc)
    return future


__all__ = ["Codec", "DecodeReport", "DEFAULT_QUALITY", "DEFAULT_MAX_PIXELS"]
