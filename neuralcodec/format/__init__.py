"""The .aec file format, bytes only (nothing here imports torch or a model).

    container.py  header, chunk directory, CRCs: pack and unpack
    grid.py       the tile grid of a version-3 file
    chunks.py     chunk tags and who owns them (families register theirs)
    quality.py    the quality unit and its stored form
    inspect.py    describe(): header facts and chunk sizes, without decoding
"""
