"""The hyperprior family: a mean-scale hyperprior (Minnen et al. 2018) with a two-pass
checkerboard context (He et al. 2021) and gain-vector rate control (Cui et al. 2021).

::

    x ──g_a──► y ──h_a──► z ──Q──► ẑ ── range coder (factorized tables) ──► HYPR
                  │                  │
                  │                 h_s (exact integer network) ──► hyper
                  │                                                   │
                  └── Q around μ ◄── (scale index, μ) ◄── entropy_parameters(hyper, ctx)
                        │                   ▲  anchors: ctx = 0; non-anchors: ctx =
                        │                   └─ context(decoded anchors)
                        ▼
                  ŷ ── range coder (Gaussian tables by scale index) ──► LATN (+ ESCP)
                  ŷ ──g_s──► x̂

Modules: ``architecture`` (the networks as data, the config), ``model`` (them in torch),
``coding_tables`` (the coding tables), ``entropy_models`` (their torch stand-ins),
``integer_net`` (the exact parameter path), ``exact_synthesis`` (``g_s`` in integers,
for pixel-exact decoding; ``exact_synthesis_torch``, its torch twin), ``latent_codec``
(y, z ↔ streams), ``float_param_path`` (format version 1), ``refine`` (encoder effort:
latents refined per image), ``stored_arrays`` (the weights file read as NumPy arrays)
and ``weights`` (its layout, written and read in torch), the transforms on two backends,
``numpy_backend`` (the CPU's) and ``torch_backend`` (CUDA, effort), and ``coder``: the
one :class:`~neuralcodec.families.base.ModelCoder` of this family and of those on its
transforms, written over either backend.
"""

from ..base import Family, register_family

# Latents are downsampled 16x by g_a and another 4x by h_a: inputs are padded to this.
LATENT_STRIDE = 16
PAD_MULTIPLE = 64
CHUNK_HYPER = b"HYPR"
CHUNK_LATENT = b"LATN"
CHUNK_ESCAPE = b"ESCP"
# Encoder effort level -> iterations of latent refinement (see ``refine``); level 1 is
# the single amortized pass. Chosen by measurement: benchmarks/effort.py.
EFFORT_ITERATIONS = {1: 0, 2: 15, 3: 50, 4: 150}
# Revision of ``refine``'s method (bump when its results change): SGA, Adam with a
# cosine-decayed step, g_s in bf16 where the device computes it natively.
EFFORT_METHOD = "sga-cos-amp"

FAMILY = register_family(Family(
    name="hyperprior-checkerboard",
    chunks={CHUNK_HYPER: "hyper-latent z, range-coded",
            CHUNK_LATENT: "latents y, range-coded",
            CHUNK_ESCAPE: "values outside the tables' range"},
    pad_multiple=PAD_MULTIPLE,
    latent_stride=LATENT_STRIDE,
    formats=(1, 2, 3),  # 1: float64 parameter path; 2, 3: exact integer path (3: tiled)
    coder_module="neuralcodec.families.hyperprior.coder",
    efforts=EFFORT_ITERATIONS,
    effort_method=EFFORT_METHOD,
    runs_on_numpy=True,
))
