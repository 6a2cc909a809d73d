"""The residual layer (issue 41): the residual between an image and the learned codec's
reconstruction, quantized with step ``2K + 1`` (maximum error K; K = 0 is lossless) and
range-coded under a context model conditioned on the reconstruction and on the residuals
already decoded. Research stage: see docs/residual.md."""
