"""attack_copy: a frozen copy whose logits and input gradients are the model's."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ddzoo.attacks import attack_copy
from ddzoo.attacks.prepare import InputGradConv2d


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("padding", [0, 2, (1, 3)])
def test_gemm_input_gradient_equals_the_convolution_gradient(padding, memory_format):
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 7, 5, padding=padding).double().requires_grad_(False).to(memory_format=memory_format)
    x = torch.randn(3, 1, 11, 13, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn_like(conv(x)).contiguous(memory_format=memory_format)
    assert upstream.is_contiguous() == (memory_format == torch.contiguous_format)
    (expected,) = torch.autograd.grad(conv(x), x, upstream)
    conv.__class__ = InputGradConv2d
    out = conv(x)
    (got,) = torch.autograd.grad(out, x, upstream)
    torch.testing.assert_close(out, nn.functional.conv2d(x, conv.weight, conv.bias, padding=conv.padding))
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_attack_copy_swaps_only_single_channel_stride_one_convolutions(lenet, mnist_test):
    frozen = attack_copy(lenet)
    swapped = [m for m in frozen.modules() if isinstance(m, InputGradConv2d)]
    assert [m.in_channels for m in swapped] == [1]
    assert not any(p.requires_grad for p in frozen.parameters())
    strided = attack_copy(nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.Conv2d(4, 4, 3)))
    assert not any(isinstance(m, InputGradConv2d) for m in strided.modules())

    x = mnist_test.tensors(limit=64)[0].clone().requires_grad_(True)
    lenet.eval()
    for cls in (0, 7):
        (expected,) = torch.autograd.grad(lenet(x)[:, cls].sum(), x)
        (got,) = torch.autograd.grad(frozen(x)[:, cls].sum(), x)
        # Max-pooling routes each gradient to the largest input of its window; where two inputs tie to float
        # rounding, the two layouts' kernels may pick different ones (seen on AVX-512 oneDNN kernels), which
        # moves a few gradient entries of a few images. Everything else must agree to float precision.
        error = (got - expected).flatten(1).norm(dim=1) / expected.flatten(1).norm(dim=1)
        assert (error < 1e-4).float().mean() >= 0.95 and error.max() < 0.1, error


def test_vectorized_candidate_gradients_work_through_the_swapped_convolution(lenet, mnist_test):
    from ddzoo.attacks.deepfool import candidate_gradients

    frozen = attack_copy(lenet)
    point = mnist_test.tensors(limit=16)[0].requires_grad_(True)
    logits = frozen(point)
    diffs = logits[:, 1:4] - logits[:, :1]
    looped = candidate_gradients(diffs, point, retain_graph=True, vectorized=False)
    batched = candidate_gradients(diffs, point, vectorized=True)
    torch.testing.assert_close(batched, looped, rtol=1e-4, atol=1e-6)
