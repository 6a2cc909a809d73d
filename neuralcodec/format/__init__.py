"""The .aec file format, bytes only (nothing here imports torch or a model).

    container.py  header, chunk directory, CRCs: pack and unpack
    grid.py       the tile grid of a version-3 file
    chunks.py     chunk tags and who owns them (families register theirs)
    quality.py    the quality unit and its stored form
    inspect.py    describe(): header facts and chunk sizes, without decoding
    requirement.py  the need chunk: the lowest aec version that decodes a file
"""

# Registered with the package, so that every reader keeps the need chunk (readers
# skip chunks they do not know).
from . import requirement  # noqa: F401
