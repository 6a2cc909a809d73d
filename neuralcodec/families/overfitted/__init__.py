"""The overfitted family (issue 42; model ``aec-of``): per image, a latent pyramid and a
tiny decoder fitted by the encoder and sent in the file. Design and measurements:
docs/overfitted.md.

    architecture.py     the decoder as data: pyramid, ARM context, upsampling, synthesis
    laplace_tables.py   fixed integer Laplace CDF tables; the exact (mean, scale) -> table map
    arm_int.py          the ARM in exact fixed point, on NumPy arrays or torch tensors
    latent_codec.py     range coding of the pyramid in wavefront order (NumPy)
    parameters.py       the networks' parameters: power-of-two steps, coding
    coding.py           a fitted model's coded parts, and decoding them (NumPy)
    numpy_synthesis.py  upsampling and synthesis in NumPy
    model.py, fit.py    the torch model and the encoder's fit (torch only here)
    chunks.py           the OFPR and OFLT chunks' layout; what aec info shows
    coder.py            the family's ModelCoder: quality -> lambda, presets
    fitting.py          the encoder of one tile: fit, quantize, code (torch)
"""

from collections.abc import Mapping, Sequence

from ..base import Family, register_family

CHUNK_PARAMETERS = b"OFPR"
CHUNK_LATENTS = b"OFLT"
# Encoder effort level -> iterations of the per-image fit (every level fits: there is no
# amortized pass). Level 1, the default, encodes a Kodak image in about 6 minutes on one
# core of the development machine (docs/overfitted.md, "Presets").
EFFORT_ITERATIONS = {1: 1000, 2: 3000, 3: 10000}
# Revision of the fit (bump when its results change): Cool-chic 5's intra schedule with
# soft-rounding, hard-rounded final phase, greedy power-of-two step search.
EFFORT_METHOD = "of-softround-1"



def _facts(tiles: Sequence[Mapping[bytes, bytes]]) -> dict:
    from .chunks import facts  # NumPy parts, loaded only when a file is described

    return facts(tiles)


FAMILY = register_family(Family(
    name="overfitted",
    chunks={CHUNK_PARAMETERS: "fitted networks' parameters, range-coded",
            CHUNK_LATENTS: "latent pyramid, range-coded"},
    pad_multiple=64,  # 2**(levels - 1): every grid of the pyramid halves exactly
    latent_stride=1,  # the finest grid is at full resolution
    formats=(3,),
    coder_module="neuralcodec.families.overfitted.coder",
    efforts=EFFORT_ITERATIONS,
    effort_method=EFFORT_METHOD,
    decodes_on_numpy=True,
    fits_per_image=True,
    facts=_facts,  # the encoder fits in torch; the decoder is NumPy only
))
