"""Every attack of the best-of finds, on an affine classifier, the minimal l2 perturbation known in closed form:
for f(x) = Wx + b labelling x as y, it is min over k ≠ y of (f_y − f_k) / ‖w_y − w_k‖₂ (the nearest facet of a
convex cell), when the box [0, 1] does not bind, as it does not here. The model has CIFAR-10's input shape and
logits as confident as a trained network's (median top softmax ≈ 0.98); its minimal norms, 0.2–0.45, are of the
order of a CIFAR-10 ResNet-20's."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ddzoo.eval.strong import BEST_OF_ATTACKS, minimum_norms

pytest.importorskip("foolbox")


@pytest.fixture(scope="module")
def affine():
    generator = torch.Generator().manual_seed(0)
    dims = 3 * 32 * 32
    model = nn.Sequential(nn.Flatten(), nn.Linear(dims, 10)).eval()
    with torch.no_grad():
        model[1].weight.copy_(torch.randn(10, dims, generator=generator) * 10 / dims**0.5)
        model[1].bias.copy_(torch.randn(10, generator=generator))
    x = 0.35 + 0.3 * torch.rand(40, 3, 32, 32, generator=generator)
    with torch.no_grad():
        logits = model(x)
    y = logits.argmax(1)
    w = model[1].weight.detach()
    margins = logits.gather(1, y[:, None]) - logits  # f_y − f_k
    distances = margins / (w[y][:, None, :] - w[None, :, :]).norm(dim=2)
    exact, nearest = distances.scatter(1, y[:, None], float("inf")).min(1)
    facet = w[nearest] - w[y]  # r* = exact · facet / ‖facet‖ reaches the nearest facet
    moved = x.flatten(1) + (exact / facet.norm(dim=1))[:, None] * facet
    assert moved.min() > 0 and moved.max() < 1  # the box does not bind, so the closed form is the minimum
    return model, x, y, exact


@pytest.mark.parametrize("name", BEST_OF_ATTACKS)
def test_each_best_of_attack_finds_the_closed_form_minimum_of_an_affine_model(affine, name):
    model, x, y, exact = affine
    ratio = minimum_norms(model, x, y, (name,), steps=100)[name] / exact
    assert torch.all(ratio >= 1 - 1e-4), "no label change can be smaller than the exact minimum"
    assert ratio.median() <= 1.025 and ratio.max() <= 1.05, f"{name}: {ratio.median():.4f} {ratio.max():.4f}"


def test_foolboxs_own_fmn_projection_is_still_a_no_op_so_ddzoo_repairs_it():
    """If a foolbox release fixes ``L2FMNAttack.project``, ddzoo.eval.fmn can go."""
    import eagerpy as ep
    from foolbox.attacks import L2FMNAttack

    from ddzoo.eval.fmn import L2FMN

    x0, x = torch.zeros(2, 4), torch.ones(2, 4)  # ‖x − x0‖₂ = 2
    eps = ep.astensor(torch.tensor([0.5, 3.0]))
    upstream = L2FMNAttack().project(ep.astensor(x), ep.astensor(x0), eps).raw
    repaired = L2FMN().project(ep.astensor(x), ep.astensor(x0), eps).raw
    assert torch.allclose(upstream, x)
    assert torch.allclose((repaired - x0).norm(dim=1), torch.tensor([0.5, 2.0]))


def test_brendel_bethge_without_numba_is_a_one_line_error_naming_the_install(affine):
    import importlib.util

    from ddzoo.errors import MissingDependencyError

    if importlib.util.find_spec("numba") is not None:
        pytest.skip("numba is installed here")
    model, x, y, _ = affine
    with pytest.raises(MissingDependencyError, match="pip install numba"):
        minimum_norms(model, x[:2], y[:2], ("bb",), steps=5)
