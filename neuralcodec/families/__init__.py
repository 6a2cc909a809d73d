"""Model families. Importing this package registers the built-in families (a few
lines each, no torch); a family's networks load only when one of its models is used.

    base.py      the contract: Family (declared chunks, downsampling) and ModelCoder
    layers.py    conv, deconv, GDN, ste_round: plain torch, CompressAI-compatible names
    zoo.py       installed models: names, cards, fingerprints, the default; load_coder
    weights.py   weights files: stored dtypes, writing and loading tensors
    hyperprior/  mean-scale hyperprior, checkerboard context, exact integer parameter path
    channel_context/  the hyperprior's transforms, channel groups + checkerboard + LRP (ELIC)
    vq/          VQ-VAE: residual product quantization with a context prior
    overfitted/  per-image fitted latent pyramid and tiny decoder (aec-of)
"""

from . import channel_context, hyperprior, overfitted, vq  # noqa: F401  (register the built-in families)
