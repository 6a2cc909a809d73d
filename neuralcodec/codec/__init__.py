"""The codec: image ↔ tiles ↔ model family ↔ container.

    codec.py        Codec: loads models once; encode, decode, salvage
    prepare.py      an image checked and in a native mode, analysis outputs cached
    tiles.py        one tile through a family coder; the cross-fade of decoded tiles
    workers.py      processes that code the tiles of one image in parallel
    rate_search.py  the highest quality meeting a target
"""

from ..format.inspect import describe
from .codec import DEFAULT_MAX_PIXELS, Codec, DecodeReport, resolve_device

__all__ = ["DEFAULT_MAX_PIXELS", "Codec", "DecodeReport", "describe", "resolve_device"]
