"""FGS and BIM: l∞ budget, valid images, and accuracy falling with ε on a real model."""

import pytest
import torch

from ddzoo.attacks import bim, fgs


@pytest.fixture(scope="module")
def batch(mnist_test):
    return mnist_test.tensors(limit=300)


def test_fgs_is_a_signed_step_inside_the_box(lenet, batch):
    x, y = batch
    adv = fgs(lenet, x, y, 0.1)
    delta = adv - x
    assert delta.abs().max() <= 0.1 + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    interior = (x > 0.1) & (x < 0.9)
    assert torch.allclose(delta[interior].abs(), torch.full_like(delta[interior], 0.1), atol=1e-6)


def test_bim_stays_in_the_eps_ball_and_beats_fgs(lenet, batch):
    x, y = batch
    eps = 0.1
    adv = bim(lenet, x, y, eps, steps=10)
    assert (adv - x).abs().max() <= eps + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    with torch.no_grad():
        acc_bim = (lenet(adv).argmax(1) == y).float().mean()
        acc_fgs = (lenet(fgs(lenet, x, y, eps)).argmax(1) == y).float().mean()
        clean = (lenet(x).argmax(1) == y).float().mean()
    assert acc_bim <= acc_fgs < clean


def test_accuracy_falls_with_eps(lenet, batch):
    x, y = batch
    with torch.no_grad():
        accs = [(lenet(fgs(lenet, x, y, eps)).argmax(1) == y).float().mean().item() for eps in (0.0, 0.1, 0.3)]
    assert accs[0] > accs[1] > accs[2]
