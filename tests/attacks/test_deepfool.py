"""DeepFool: exact where the answer is known, agrees with foolbox 3, and every 'fooled' is real."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ddzoo.attacks import attack_copy, deepfool
from ddzoo.attacks.deepfool import deepfool_budgets, l2_norms
from ddzoo.errors import InvalidArgumentError


def affine_classifier(dim: int = 20, classes: int = 6, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    layer = nn.Linear(dim, classes).double()
    return layer


def closed_form_distance(layer: nn.Linear, x: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
    """min over k != k̂ of |f_k - f_k̂| / ||w_k - w_k̂|| for an affine classifier (exact l2 distance)."""
    with torch.no_grad():
        logits = layer(x)
        start = logits.argmax(1)
        w, f = layer.weight, logits
        dw = w[None, :, :] - w[start][:, None, :]  # (N, C, D)
        df = (f - f.gather(1, start[:, None])).abs()
        dist = df / dw.norm(dim=2)
        dist[torch.arange(len(x)), start] = float("inf")
        if targets is not None:
            return dist.gather(1, targets[:, None]).squeeze(1)
        return dist.min(1).values


@pytest.mark.parametrize("linearize_at", ["accumulated", "overshoot"])
def test_affine_classifier_exact_in_one_step(linearize_at):
    layer = affine_classifier()
    x = torch.randn(64, 20, dtype=torch.float64)
    result = deepfool(layer, x, max_iter=50, overshoot=0.02, num_candidates=6, linearize_at=linearize_at)
    expected = closed_form_distance(layer, x)
    found = l2_norms(result.perturbation) / 1.02
    assert ((found - expected).abs() / expected).max() <= 1e-4
    assert result.iterations.tolist() == [1] * 64
    assert result.fooled.all()


def test_affine_targeted_reaches_the_target_boundary():
    layer = affine_classifier(seed=1)
    x = torch.randn(32, 20, dtype=torch.float64)
    start = layer(x).argmax(1)
    targets = (start + 1) % 6
    result = deepfool(layer, x, max_iter=50, overshoot=0.02, targets=targets)
    # With candidates {k̂, target}, one step lands on the two-class boundary: exact distance.
    expected = closed_form_distance(layer, x, targets)
    found = l2_norms(result.perturbation) / 1.02
    first_step = result.iterations == 1
    assert first_step.any()
    assert (((found - expected).abs() / expected)[first_step]).max() <= 1e-6
    assert (layer(x + result.perturbation).argmax(1)[result.fooled] == targets[result.fooled]).all()


def test_already_at_target_takes_no_step():
    layer = affine_classifier()
    x = torch.randn(4, 20, dtype=torch.float64)
    result = deepfool(layer, x, targets=layer(x).argmax(1))
    assert result.iterations.tolist() == [0] * 4 and result.fooled.all()
    assert result.perturbation.abs().max() == 0


def test_bad_arguments():
    layer = affine_classifier()
    with pytest.raises(InvalidArgumentError, match="num_candidates must be at least 2"):
        deepfool(layer, torch.randn(2, 20, dtype=torch.float64), num_candidates=1)
    with pytest.raises(InvalidArgumentError, match="linearize_at"):
        deepfool(layer, torch.randn(2, 20, dtype=torch.float64), linearize_at="midpoint")
    with pytest.raises(InvalidArgumentError, match="screen"):
        deepfool(layer, torch.randn(2, 20, dtype=torch.float64), create_graph=True, screen=0.2)
    with pytest.raises(InvalidArgumentError, match="eval-mode"):
        deepfool(layer.train(), torch.randn(2, 20, dtype=torch.float64), screen=0.2)


def test_the_screen_keeps_a_float64_model_exact():
    """In float64 the screen's exact gradients stay float64: the affine classifier's closed form, to 1e-9."""
    layer = affine_classifier().eval()
    x = torch.randn(64, 20, dtype=torch.float64)
    result = deepfool(layer, x, overshoot=0.02, num_candidates=6, screen=0.2)
    assert result.perturbation.dtype == torch.float64 and result.fooled.all()
    assert result.iterations.tolist() == [1] * 64
    assert torch.allclose(l2_norms(result.perturbation) / 1.02, closed_form_distance(layer, x), rtol=1e-9)


@pytest.fixture(scope="module")
def mnist_500(mnist_test):
    return mnist_test.tensors(limit=500)


@pytest.mark.parametrize("bounds", [None, (0.0, 1.0)])
def test_every_fooled_sample_is_really_misclassified(lenet, mnist_500, bounds):
    x, _ = mnist_500
    result = deepfool(lenet, x, max_iter=50, bounds=bounds)
    with torch.no_grad():
        predicted = lenet(x + result.perturbation).argmax(1)
    assert result.fooled.float().mean() > 0.95
    assert (predicted[result.fooled] != result.start_labels[result.fooled]).all()
    assert (predicted[~result.fooled] == result.start_labels[~result.fooled]).all()
    if bounds is not None:
        adversarial = x + result.perturbation
        assert adversarial.min() >= 0 and adversarial.max() <= 1


def test_rho_agrees_with_foolbox_within_one_percent(lenet, mnist_500):
    """foolbox 3 L2DeepFoolAttack, same candidates, steps, overshoot and linearisation point, bounds that
    never bind, started from the predicted labels, on the same 500 real test images."""
    fb = pytest.importorskip("foolbox")
    x, _ = mnist_500
    model = attack_copy(lenet)
    with torch.no_grad():
        predicted = model(x).argmax(1)
    fmodel = fb.PyTorchModel(model, bounds=(-1e4, 1e4))
    attack = fb.attacks.L2DeepFoolAttack(steps=50, candidates=10, overshoot=0.02, loss="logits")
    _, clipped, success = attack(fmodel, x, fb.criteria.Misclassification(predicted), epsilons=None)
    theirs = (l2_norms(clipped - x) / l2_norms(x)).mean().item()
    ours_result = deepfool(model, x, max_iter=50, num_candidates=10, overshoot=0.02, linearize_at="overshoot")
    ours = ours_result.rho(x).mean().item()
    assert abs(ours - theirs) / theirs < 0.01, (ours, theirs)
    assert ours_result.fooled.float().mean().item() == pytest.approx(success.float().mean().item(), abs=0.01)


@pytest.mark.parametrize(("linearize_at", "bounds"), [("accumulated", None), ("overshoot", (0.0, 1.0))])
def test_batch_composition_does_not_change_a_sample(lenet, mnist_500, linearize_at, bounds):
    """Alone or among 40 others (where rows that finish may stay in a step's graph), a sample gets the same r."""
    x, _ = mnist_500
    settings = {"max_iter": 50, "linearize_at": linearize_at, "bounds": bounds}
    together = deepfool(lenet, x[:40], **settings)
    for i in range(0, 40, 3):
        alone = deepfool(lenet, x[i : i + 1], **settings)
        torch.testing.assert_close(together.perturbation[i : i + 1], alone.perturbation, atol=1e-5, rtol=1e-4)
        assert together.iterations[i] == alone.iterations[0]


@pytest.mark.parametrize("bounds", [None, (0.0, 1.0)])
def test_budget_sweep_equals_separate_runs(lenet, mnist_500, bounds):
    """Several max_iter from one sweep give what separate runs give, re-attacking only the unfooled images."""
    x, _ = mnist_500
    x = x[:60]
    swept: list[int] = []
    sweep = deepfool_budgets(CountingModel(lenet, swept), x, (50, 1, 2), bounds=bounds)
    assert list(sweep) == [1, 2, 50]
    assert not sweep[1].fooled.all() and sweep[50].fooled.all()
    separate: list[int] = []
    for budget, result in sweep.items():
        alone = deepfool(CountingModel(lenet, separate), x, max_iter=budget, bounds=bounds)
        torch.testing.assert_close(result.perturbation, alone.perturbation, atol=1e-5, rtol=1e-4)
        assert torch.equal(result.fooled, alone.fooled) and torch.equal(result.iterations, alone.iterations)
        assert torch.equal(result.start_labels, alone.start_labels)
    assert sum(swept) < sum(separate)  # larger budgets re-attack only the images still unfooled


class CountingModel(nn.Module):
    """A model that records the batch size of every forward."""

    def __init__(self, model: nn.Module, calls: list[int]):
        super().__init__()
        self.model, self.calls = model, calls

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(len(x))
        return self.model(x)


def test_one_oracle_call_per_step_when_the_check_shares_the_point(lenet, mnist_500):
    """Linearising at the overshoot point, each step's forward also answers the success check."""
    x, _ = mnist_500
    calls = []

    def oracle(point):
        calls.append(len(point))
        with torch.no_grad():
            return lenet(point)

    result = deepfool(lenet, x[:40], max_iter=50, linearize_at="overshoot", oracle=oracle)
    assert result.fooled.all()
    steps = int(result.iterations.max())
    assert len(calls) == steps + 2  # the clean logits, one per step, the check that ends the last step


@pytest.mark.parametrize("overshoot", [0.02, 0.0])  # 0: the success check shares the step's forward
def test_differentiable_mode_matches_and_carries_gradients(lenet, mnist_500, overshoot):
    x, _ = mnist_500
    x = x[:32]
    model = lenet.train(False)
    plain = deepfool(model, x, max_iter=5, overshoot=overshoot)
    differentiable = deepfool(model, x, max_iter=5, overshoot=overshoot, create_graph=True)
    torch.testing.assert_close(differentiable.perturbation.detach(), plain.perturbation, atol=1e-5, rtol=1e-4)
    assert differentiable.perturbation.requires_grad
    rho = differentiable.rho(x, eps=1e-5).mean()
    grads = torch.autograd.grad(rho, [p for p in model.parameters()], allow_unused=True)
    used = [g for g in grads if g is not None]
    assert used and all(torch.isfinite(g).all() for g in used)
    assert sum(g.abs().sum() for g in used) > 0


@pytest.mark.parametrize("bounds", [(0.0, 1.0)])  # box-constrained: the harder case (clipped steps, more of them)
def test_the_bf16_screen_takes_the_float32_attacks_decisions_and_steps(bounds, data_dir):
    """The screen decides only which candidates get float32 gradients: on the bundled ResNet-20 (60 CIFAR-10
    test images, 50 iterations, K = 10) every image takes the same iterations to the same perturbation. Where
    bfloat16 is emulated (no AVX-512 BF16 / AMX: the screen is off by default there), 10 images keep it quick."""
    import ddzoo
    from ddzoo.attacks.deepfool import SCREEN, bf16_is_fast
    from ddzoo.data import load_split

    model = attack_copy(ddzoo.load("resnet-cifar10-ref", offline=True))
    x, _ = load_split("cifar10", "test").tensors(limit=60 if bf16_is_fast(torch.device("cpu")) else 10)
    exact = deepfool(model, x, bounds=bounds)
    screened = deepfool(model, x, bounds=bounds, screen=SCREEN)
    assert torch.equal(screened.iterations, exact.iterations) and torch.equal(screened.fooled, exact.fooled)
    assert torch.allclose(screened.perturbation, exact.perturbation, rtol=1e-5, atol=1e-7)


def test_a_zero_step_ends_the_rows_search_with_the_result_every_later_step_gives(lenet, mnist_500):
    """Against quantised logits (an INT8 artifact's), the nearest candidate can tie with k̂ (f'_l = 0, not fooled):
    the step is zero, the point stays, and every later check and step repeats. Such a row gets the result a longer
    run gives (every iteration counted) without the gradient work of the iterations left. A tie at the clean point
    is not such a case: the first check (argmax, which may pick the other tied class) can already succeed."""
    x, _ = mnist_500
    x = x[:100]

    def quantised(points: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return (lenet(points) * 0.5).round() / 0.5

    work = {}
    results = {}
    for budget in (10, 50):
        calls: list[int] = []
        results[budget] = deepfool(CountingModel(lenet, calls), x, max_iter=budget, oracle=quantised)
        work[budget] = sum(calls)
    short, long = results[10], results[50]
    stuck = (long.iterations == 50) & ~long.fooled
    assert stuck.sum() >= 3, "the case: rows at a tie"
    assert (short.iterations[stuck] == 10).all() and torch.equal(short.perturbation[stuck], long.perturbation[stuck])
    assert work[50] <= work[10] + 2 * int((long.iterations > 10).sum()), "no gradient steps for the repeats"


def test_a_tie_at_the_clean_point_is_checked_before_a_search_ends():
    """A zero first step (a tie at the clean point) does not end the search: the first check looks at x, where
    argmax may pick the other tied class than DeepFool's k̂ (topk): fooled after 1 iteration, as DeepFool does."""
    model = nn.Linear(6, 10)
    with torch.no_grad():
        model.weight.copy_(torch.randn(10, 6, generator=torch.Generator().manual_seed(0)))
        model.bias.zero_()
    x = torch.randn(400, 6, generator=torch.Generator().manual_seed(1))

    def quantised(points: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return (model(points) * 0.5).round()

    clean = quantised(x)
    tied = clean.argmax(1) != clean.topk(10, dim=1).indices[:, 0]
    assert tied.sum() >= 3, "the case: ties at the clean point that topk and argmax break differently"
    result = deepfool(model, x, max_iter=10, oracle=quantised)
    assert result.fooled[tied].all() and (result.iterations[tied] == 1).all()
