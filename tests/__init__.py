"""Tests of aec."""

# First, as the aec command does: the package names OpenBLAS's kernels before NumPy
# loads (neuralcodec.cpu), so pixels here match those of the processes tests start.
import neuralcodec  # noqa: F401
