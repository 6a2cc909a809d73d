"""The channel-context family: the hyperprior's transforms with an ELIC-style context
(He et al. 2022): the latents are coded in uneven channel groups (16/16/32/64/64), each
group in two checkerboard passes, its Gaussian parameters predicted from the hyper
features, the groups already decoded (channel context, Minnen & Singh 2020) and the
group's own decoded anchors (spatial context); after a group is decoded, latent residual
prediction (LRP) adds a bounded correction to it.

::

    x ──g_a──► y ──h_a──► z ──Q──► ẑ ── range coder (factorized tables) ──► HYPG
                  │                  │ h_s (exact integer network)
                  │                  ▼
                  │                hyper ─────────────┐
                  │   for each group k = 0 .. 4:      ▼
                  │     cc_k = channel_context_k(ŷ_0 .. ŷ_k-1)        (none for k = 0)
                  │     anchors:     (scale index, μ) = group_parameters_k(hyper, cc_k, 0)
                  │     non-anchors: (scale index, μ) = group_parameters_k(hyper, cc_k,
                  │                                  spatial_context_k(anchors of ŷ_k))
                  └──►  ŷ_k = round(y_k − μ) + μ ── range coder (Gaussian tables) ──► LATG
                        ŷ_k += clamp(lrp_k(μ, cc_k, ŷ_k), −½, ½)
    ŷ ──g_s──► x̂

Every network after ``z`` that feeds a table index, a mean or a later context is an
exact integer network (:mod:`.integer_net`), so files decode bit-exactly everywhere.

Modules: ``architecture`` (config and context networks as data), ``model`` (the torch
networks), ``integer_net`` (the exact parameter path), ``latent_codec`` (y, z ↔ streams),
``refine`` (encoder effort), ``weights`` (file layout) and ``coder`` (this family's parts
of the hyperprior's coder, which runs the same transforms on a NumPy or torch backend).
"""

from ..base import Family, register_family
from ..hyperprior import EFFORT_ITERATIONS, EFFORT_METHOD, LATENT_STRIDE

# The hyperprior's transforms: latents at 1/16, z at 1/64 of the padded image.
PAD_MULTIPLE = 64
CHUNK_HYPER = b"HYPG"
CHUNK_LATENT = b"LATG"
CHUNK_ESCAPE = b"ESCG"

FAMILY = register_family(Family(
    name="hyperprior-channel-checkerboard",
    chunks={CHUNK_HYPER: "hyper-latent z, range-coded",
            CHUNK_LATENT: "latents y by channel group and checkerboard pass, range-coded",
            CHUNK_ESCAPE: "values outside the tables' range"},
    pad_multiple=PAD_MULTIPLE,
    latent_stride=LATENT_STRIDE,
    formats=(2, 3),  # exact integer parameter path; 3: tiled (one tile at a time)
    coder_module="neuralcodec.families.channel_context.coder",
    efforts=EFFORT_ITERATIONS,  # the hyperprior's refinement, this family's rate (refine)
    effort_method=EFFORT_METHOD,
    runs_on_numpy=True,
))
