"""The overfitted family (issue 42, in development; not yet registered as a family): per
image, a latent pyramid and a tiny decoder fitted by the encoder and sent in the file.
Design and measurements: docs/overfitted.md.

    architecture.py     the decoder as data: pyramid, ARM context, upsampling, synthesis
    laplace_tables.py   fixed integer Laplace CDF tables; the exact (mean, scale) -> table map
    arm_int.py          the ARM in exact fixed point, on NumPy arrays or torch tensors
    latent_codec.py     range coding of the pyramid in wavefront order (NumPy)
    parameters.py       the networks' parameters: power-of-two steps, coding
    coding.py           a fitted model's coded parts, and decoding them (NumPy)
    numpy_synthesis.py  upsampling and synthesis in NumPy
    model.py, fit.py    the torch model and the encoder's fit (torch only here)
"""
