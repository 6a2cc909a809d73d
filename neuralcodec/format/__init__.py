"""The .aec file format: container (header, chunk directory, CRCs), tile grid, chunk-tag
registry and the stored quality. Bytes only: nothing here imports torch or a model."""
