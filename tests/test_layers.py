"""Our GDN against CompressAI's (training must go on exactly as before), and its fast
inference path against its training path."""

from __future__ import annotations

import warnings

import pytest
import torch

from neuralcodec.families.layers import GDN


@pytest.mark.parametrize("inverse", [False, True])
def test_gdn_matches_compressai_forward_and_backward(inverse):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        from compressai.layers import GDN as ReferenceGDN
    torch.manual_seed(0)
    ours, reference = GDN(16, inverse=inverse), ReferenceGDN(16, inverse=inverse)
    with torch.no_grad():  # trained-looking parameters, a few below their bounds
        reference.beta.copy_(torch.rand(16) + 0.1)
        reference.gamma.copy_(torch.rand(16, 16) * 0.3)
        reference.gamma[0, :4] = -0.01
    ours.load_state_dict(reference.state_dict())  # strict: the same names and shapes
    for name, value in reference.state_dict().items():  # and the very values, unconverted
        assert torch.equal(ours.state_dict()[name], value), name
    x = torch.randn(2, 16, 9, 7)
    out, expected = ours(x), reference(x)
    torch.testing.assert_close(out, expected)
    out.square().sum().backward()
    expected.square().sum().backward()
    torch.testing.assert_close(ours.gamma.grad, reference.gamma.grad)
    torch.testing.assert_close(ours.beta.grad, reference.beta.grad)


@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
def test_gdn_inference_path_equals_training_path(inverse, channels_last):
    torch.manual_seed(1)
    gdn = GDN(24, inverse=inverse)
    with torch.no_grad():
        gdn.gamma.add_(torch.rand(24, 24) * 0.1)
    x = torch.randn(1, 24, 50, 70)  # more positions than one block
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.enable_grad():
        reference = gdn(x.requires_grad_()).detach()
    with torch.no_grad():
        fast = gdn(x.detach())
    torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("inverse", [False, True])
def test_gdn_input_gradient_with_frozen_parameters_equals_training_path(inverse):
    # Encoder refinement differentiates through a frozen g_s: the blockwise backward
    # must give the training path's input gradient.
    torch.manual_seed(2)
    gdn = GDN(24, inverse=inverse)
    with torch.no_grad():
        gdn.beta.add_(torch.rand(24))
        gdn.gamma.add_(torch.rand(24, 24) * 0.1)
    x = torch.randn(1, 24, 50, 70).contiguous(memory_format=torch.channels_last)
    weights = torch.randn(1, 24, 50, 70)
    x.requires_grad_()
    (gdn(x) * weights).sum().backward()
    expected, x.grad = x.grad.clone(), None
    gdn.requires_grad_(False)
    (gdn(x) * weights).sum().backward()
    torch.testing.assert_close(x.grad, expected, rtol=1e-5, atol=1e-5)
