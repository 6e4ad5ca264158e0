"""The Deep Defense objective: exact gradients (finite differences, full graph), λ = 0, descent."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ddzoo.models import Classifier
from ddzoo.train import DeepDefenseRecipe, deep_defense_regularizer
from ddzoo.train.deep_defense import deep_defense_loss, freeze_batch_norm


def tiny_classifier(seed: int = 0) -> Classifier:
    """A smooth (tanh) float64 model, so finite differences see the double-backprop terms too."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(8, 12), nn.Tanh(), nn.Linear(12, 5))
    return Classifier("tiny", net, (0.2,), (0.5,)).double()


def tiny_batch(model: Classifier, n: int = 24, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 2, 4, generator=g, dtype=torch.float64)
    with torch.no_grad():
        y = model(x).argmax(1)
    y[::3] = (y[::3] + 1) % 5  # a third of the batch misclassified: both penalty terms are exercised
    return x, y


RECIPE = DeepDefenseRecipe(lam=2.0, c=5.0, d=3.0, num_candidates=5)


def regularizer_value(model, x, y, recipe=RECIPE, full_graph=False):
    logits = model(x)
    return deep_defense_regularizer(model, x, y, logits, recipe, full_graph=full_graph)[0]


@pytest.mark.parametrize("space", ["normalized", "pixel"])
def test_gradient_matches_finite_differences(space):
    model = tiny_classifier()
    x, y = tiny_batch(model)
    recipe = DeepDefenseRecipe(lam=2.0, c=5.0, d=3.0, num_candidates=5, space=space)
    params = list(model.parameters())
    grads = torch.autograd.grad(regularizer_value(model, x, y, recipe), params)
    g = torch.Generator().manual_seed(2)
    h = 1e-6
    for _ in range(4):
        direction = [torch.randn(p.shape, generator=g, dtype=torch.float64) for p in params]
        with torch.no_grad():
            for p, v in zip(params, direction, strict=True):
                p.add_(h * v)
            plus = regularizer_value(model, x, y, recipe).item()
            for p, v in zip(params, direction, strict=True):
                p.sub_(2 * h * v)
            minus = regularizer_value(model, x, y, recipe).item()
            for p, v in zip(params, direction, strict=True):
                p.add_(h * v)
        numeric = (plus - minus) / (2 * h)
        analytic = sum((gr * v).sum() for gr, v in zip(grads, direction, strict=True)).item()
        assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-9)


def test_chosen_class_graph_equals_full_graph_float64():
    model = tiny_classifier(3)
    x, y = tiny_batch(model, seed=4)
    params = list(model.parameters())
    fast = regularizer_value(model, x, y)
    full = regularizer_value(model, x, y, full_graph=True)
    assert fast.item() == pytest.approx(full.item(), rel=1e-12)
    for a, b in zip(torch.autograd.grad(fast, params), torch.autograd.grad(full, params), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_chosen_class_graph_equals_full_graph_on_lenet(lenet, mnist_test):
    model = copy.deepcopy(lenet)
    x, y = mnist_test.tensors(limit=40)
    y[:5] = (y[:5] + 1) % 10
    params = list(model.parameters())
    recipe = DeepDefenseRecipe()
    fast, full = (regularizer_value(model, x, y, recipe, full_graph=f) for f in (False, True))
    assert fast.item() == pytest.approx(full.item(), rel=1e-5)
    for a, b in zip(torch.autograd.grad(fast, params), torch.autograd.grad(full, params), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-6)


def test_lambda_zero_is_cross_entropy():
    model = tiny_classifier()
    x, y = tiny_batch(model)
    loss, stats = deep_defense_loss(model, model, x, y, DeepDefenseRecipe(lam=0.0))
    assert loss.item() == pytest.approx(F.cross_entropy(model(x), y).item(), rel=1e-12)
    assert stats["reg"] == 0.0


def test_a_few_steps_lower_the_loss_on_a_fixed_batch(lenet, mnist_test):
    model = copy.deepcopy(lenet)  # the session fixture must stay untrained
    x, y = mnist_test.tensors(limit=100)
    recipe = DeepDefenseRecipe()
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum)
    losses = []
    for _ in range(6):
        loss, _ = deep_defense_loss(model, model, x, y, recipe)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_batch_norm_is_frozen():
    """Frozen batch norm: the eval-mode function and state-dict keys, no training of its statistics or affine."""
    from ddzoo.models import create_model
    from ddzoo.train.deep_defense import FrozenBatchNorm2d

    reference = create_model("resnet20", "cifar10", seed=0)
    for module in reference.modules():  # non-trivial statistics, as after training
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1), module.running_var.uniform_(0.5, 2)
            module.weight.data.uniform_(0.5, 2)
    model = copy.deepcopy(reference)
    freeze_batch_norm(model.train())
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(isinstance(m, FrozenBatchNorm2d) for m in bns)
    assert all(not m.training and not m.weight.requires_grad for m in bns)
    assert model.state_dict().keys() == reference.state_dict().keys()
    x = torch.rand(8, 3, 32, 32)
    before = [m.running_mean.clone() for m in bns]
    # float32 through 20 layers: the two paths' kernels round differently by CPU (1.3e-5 relative on an AVX2-only
    # EPYC); a BN left training would differ by O(1)
    torch.testing.assert_close(model(x), reference.eval()(x), rtol=1e-4, atol=1e-4)
    assert all(torch.equal(b, m.running_mean) for b, m in zip(before, bns, strict=True))


def test_deep_defense_raises_rho2_at_similar_accuracy(mnist_test, tmp_path):
    """The project's central claim, on real data: a short Deep Defense fine-tune of the zoo's converged LeNet
    reference raises DeepFool's ρ₂ on test images by a clear margin while keeping its accuracy."""
    from ddzoo.eval.robustness import EvalSettings, deepfool_rho
    from ddzoo.models.inference import accuracy
    from ddzoo.package import load_checkpoint
    from ddzoo.train import finetune_deep_defense
    from ddzoo.zoo import pull

    reference = pull("lenet-mnist-ref", offline=True)  # bundled: 10 epochs on all of MNIST
    recipe = DeepDefenseRecipe(epochs=1, c=10.0, num_candidates=3)
    dd = finetune_deep_defense(reference, tmp_path / "dd", recipe, device="cpu", train_limit=10_000)
    x, y = mnist_test.tensors(limit=2000)
    measured = {}
    for name, folder in (("reference", reference), ("deep defense", dd)):
        model, _ = load_checkpoint(folder)
        rho = deepfool_rho(model, x[:300], space="normalized", max_iter=20, settings=EvalSettings(),
                           device=torch.device("cpu"))
        measured[name] = (accuracy(model, x, y), rho["rho2"], rho["fooled"])
    (ref_acc, ref_rho, _), (dd_acc, dd_rho, dd_fooled) = measured["reference"], measured["deep defense"]
    assert dd_rho / ref_rho > 1.2, measured  # 1.26 measured (100 steps); seeded, so deterministic on a CPU
    assert dd_acc > ref_acc - 0.01, measured
    assert dd_fooled > 0.95  # the larger ρ₂ is not DeepFool failing to find perturbations
