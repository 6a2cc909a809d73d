"""The VQ-VAE family: residual product quantization of the latents, entropy-constrained
index search and a context prior over the indices.

::

    x ──g_a──► y ──×scale──► z ── residual product VQ (ECVQ) ──► indices
    indices of the first n units (n from the quality) ── range coder ──► VQIX
    VQIX ──► indices ──► Σ codewords ──► ẑ ──g_s──► x̂

Modules: ``model`` (networks, quantizer, prior), ``coder`` (the family's
:class:`~neuralcodec.families.base.ModelCoder` and weights layout).
"""

from ..base import Family, register_family

DOWNSAMPLING = 16
CHUNK_VQ_INDICES = b"VQIX"

FAMILY = register_family(Family(
    name="vq-vae",
    chunks={CHUNK_VQ_INDICES: "codebook indices, range-coded"},
    pad_multiple=DOWNSAMPLING,
    latent_stride=DOWNSAMPLING,
    formats=(2, 3),  # 3: the tiled container (the coder sees one tile at a time)
    coder_module="neuralcodec.families.vq.coder",
))
