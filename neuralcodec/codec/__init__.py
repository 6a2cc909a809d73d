"""The codec: image ↔ tiles ↔ model family ↔ container.

    options.py      EncodeOptions / DecodeOptions: what every entry point asks, checked once
    codec.py        Codec: loads models once; encode, decode, salvage
    prepare.py      an image checked and in a native mode, analysis outputs cached
    tiles.py        one tile through a family coder; the cross-fade of decoded tiles
    workers.py      processes that code the tiles of one image in parallel
    rate_search.py  the highest quality meeting a target

Its names load on first access, so that importing the options (as the API, the Pillow
plugin and the command line's help do) does not import the coding path.
"""

from __future__ import annotations

from ..lazy import lazy_attributes

_LAZY = {
    "Codec": "neuralcodec.codec.codec",
    "DecodeReport": "neuralcodec.codec.codec",
    "resolve_device": "neuralcodec.codec.codec",
    "DEFAULT_MAX_PIXELS": "neuralcodec.codec.options",
    "DecodeOptions": "neuralcodec.codec.options",
    "EncodeOptions": "neuralcodec.codec.options",
    "describe": "neuralcodec.format.inspect",
}


__getattr__ = lazy_attributes(__name__, _LAZY)


__all__ = ["DEFAULT_MAX_PIXELS", "Codec", "DecodeOptions", "DecodeReport", "EncodeOptions",
           "describe", "resolve_device"]
