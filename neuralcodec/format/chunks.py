"""Chunk tags and who owns them.

A tag is 4 ASCII bytes; an upper-case first letter makes a chunk *critical* (a reader
that does not know it must refuse the file), a lower-case one *ancillary* (skipped).
The container knows no model family: each family registers the tags it writes when it
is registered (see :func:`neuralcodec.families.base.register_family`), and the codec
registers the tags it writes around the families' (alpha, metadata).
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import CorruptFileError

_OWNERS: dict[bytes, str] = {}


def register_chunk(tag: bytes, owner: str) -> bytes:
    """Declare ``tag`` as written by ``owner``; returns the tag."""
    if len(tag) != 4 or not all(0x20 < b < 0x7F for b in tag):
        raise ValueError(f"chunk tag {tag!r} is not 4 printable ASCII bytes")
    known = _OWNERS.setdefault(tag, owner)
    if known != owner:
        raise ValueError(f"chunk tag {tag.decode()} is already owned by {known}")
    return tag


def is_known(tag: bytes) -> bool:
    return tag in _OWNERS


def owners() -> dict[bytes, str]:
    """Every registered tag and its owner."""
    return dict(_OWNERS)


def require_chunks(chunks: Mapping[bytes, bytes], tags: tuple[bytes, ...]) -> None:
    """Fail naming the first of ``tags`` (a model family's required chunks) that is absent."""
    for tag in tags:
        if tag not in chunks:
            raise CorruptFileError(f"required chunk {tag.decode()} is missing")


# Written by the codec for any family: the alpha band of a tile (PNG-compressed), and
# the input's ICC profile and EXIF block (whole-image, version 3).
CHUNK_ALPHA = register_chunk(b"ALPH", "codec: alpha band")
CHUNK_ICC = register_chunk(b"iccp", "codec: ICC profile")
CHUNK_EXIF = register_chunk(b"exif", "codec: EXIF block")
# The residual layer (issue 41): a tile's residual against the final reconstruction
# (critical: a reader without it would show only the base layer of a lossless file),
# and the marker of files whose base is decoded with the exact synthesis (ancillary: a
# reader without it decodes the float synthesis, within a level).
CHUNK_RESIDUAL = register_chunk(b"RESD", "codec: residual layer")
CHUNK_EXACT = register_chunk(b"exsy", "codec: exact synthesis marker")
