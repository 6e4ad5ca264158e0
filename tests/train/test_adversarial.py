"""Adversarial training: PGD stays in its ball and beats FGS; PGD training raises PGD accuracy at its ε on real
MNIST; a resumed run ends with the same weights."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from ddzoo.attacks import attack_copy, fgs, noisy_fgs, pgd
from ddzoo.data import Split, load_split
from ddzoo.package import load_checkpoint, read_config
from ddzoo.train import AdversarialRecipe, train_adversarial


@pytest.mark.parametrize("norm, eps", [("linf", 0.1), ("l2", 1.5)])
def test_pgd_stays_in_its_ball_and_the_box_and_beats_fgs(lenet, mnist_test, norm, eps):
    x, y = mnist_test.tensors(limit=100)
    model = attack_copy(lenet)
    adv = pgd(model, x, y, eps, norm=norm, steps=10, generator=torch.Generator().manual_seed(0))
    delta = (adv - x).flatten(1)
    size = delta.abs().max(dim=1).values if norm == "linf" else delta.norm(dim=1)
    assert torch.all(size <= eps + 1e-5) and adv.min() >= 0 and adv.max() <= 1
    with torch.no_grad():
        pgd_acc = (model(adv).argmax(1) == y).float().mean()
        clean_acc = (model(x).argmax(1) == y).float().mean()
    assert pgd_acc < clean_acc
    if norm == "linf":
        with torch.no_grad():
            assert pgd_acc <= (model(fgs(model, x, y, eps)).argmax(1) == y).float().mean()


def _pgd_accuracy(folder, x, y, eps):
    model, _ = load_checkpoint(folder)
    frozen = attack_copy(model)
    adv = pgd(frozen, x, y, eps, steps=10, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return (frozen(adv).argmax(1) == y).float().mean().item(), (frozen(x).argmax(1) == y).float().mean().item()


def test_pgd_training_raises_pgd_accuracy_at_its_eps(lenet_checkpoint, mnist_test, tmp_path):
    recipe = AdversarialRecipe(epochs=1, eps=0.1, attack_steps=3, lr=0.01, batch_size=100)
    trained = train_adversarial("lenet", "mnist", tmp_path / "at", recipe, init=lenet_checkpoint, device="cpu",
                                train_limit=4000)
    x, y = mnist_test.tensors(limit=500)
    before, clean_before = _pgd_accuracy(lenet_checkpoint, x, y, 0.1)
    after, clean_after = _pgd_accuracy(trained, x, y, 0.1)
    assert after > before + 0.1, (before, after)  # 0.61 -> 0.77 measured (40 steps, seeded)
    assert clean_after > 0.9


def test_adversarial_resume_equals_uninterrupted(lenet_checkpoint, tmp_path):
    recipe = AdversarialRecipe(epochs=2, eps=0.1, attack_steps=2, batch_size=50)
    whole = train_adversarial("lenet", "mnist", tmp_path / "whole", recipe, init=lenet_checkpoint, device="cpu",
                              train_limit=200)
    split = tmp_path / "split"
    train_adversarial("lenet", "mnist", split, recipe, init=lenet_checkpoint, device="cpu", train_limit=200,
                      stop_after_epochs=1)
    train_adversarial("lenet", "mnist", split, recipe, init=lenet_checkpoint, device="cpu", train_limit=200,
                      resume=True)
    a, b = load_file(str(whole / "model.safetensors")), load_file(str(split / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bad_adversarial_options_are_refused():
    from ddzoo.errors import InvalidArgumentError

    for bad in ({"norm": "l1"}, {"attack": "fgs", "norm": "l2"}, {"adv_weight": 2.0}, {"eps": -1.0},
                {"attack": "nfgsm", "norm": "l2"}, {"noise": -1.0}, {"guard_images": -1}, {"guard_steps": 0}):
        with pytest.raises(InvalidArgumentError):
            AdversarialRecipe(**bad).validate()


def test_noisy_fgs_leaves_the_eps_ball_by_its_noise_only_and_fools(lenet, mnist_test):
    """N-FGSM: |δ| ≤ (k + 1)·ε, not projected onto the ε-ball (most pixels leave it), inside the box."""
    x, y = mnist_test.tensors(limit=200)
    model = attack_copy(lenet)
    eps = 0.1
    adv = noisy_fgs(model, x, y, eps, noise=2.0, generator=torch.Generator().manual_seed(0))
    delta = (adv - x).abs()
    assert delta.max() <= 3 * eps + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    assert (delta > eps + 1e-6).float().mean() > 0.1
    with torch.no_grad():
        assert (model(adv).argmax(1) == y).float().mean() < (model(x).argmax(1) == y).float().mean()


def test_guard_keeps_the_best_epoch_and_resumes(lenet_checkpoint, tmp_path):
    """With --guard-images, every epoch's held-out PGD accuracy is recorded and the checkpoint holds the
    weights of the best epoch; a resumed guarded N-FGSM run ends with the same weights and curve (the
    resume test of the plain PGD recipe is above)."""
    recipe = AdversarialRecipe(epochs=2, eps=0.1, attack="nfgsm", lr=0.01, batch_size=50, guard_images=100,
                               guard_steps=2)
    run = {"init": lenet_checkpoint, "device": "cpu", "train_limit": 200}
    split = tmp_path / "split"
    train_adversarial("lenet", "mnist", split, recipe, stop_after_epochs=1, **run)
    train_adversarial("lenet", "mnist", split, recipe, resume=True, **run)
    metrics = read_config(split)["metrics"]
    curve = metrics["holdout_guard_curve"]
    assert len(curve) == 2 and len(metrics["holdout_curve"]) == 2
    best = max(range(2), key=lambda i: (curve[i], i)) + 1
    assert metrics["best_epoch"] == best
    model, _ = load_checkpoint(split)
    train = load_split("mnist", "train")
    holdout = Split(train.info, train.name, train.images[200:300], train.labels[200:300])
    assert abs(recipe.guard(model, holdout, torch.device("cpu")) - curve[best - 1]) <= 0.02  # layout rounding
    kept = load_file(str(split / "best_epoch.safetensors"))
    saved = load_file(str(split / "model.safetensors"))
    assert all(torch.equal(kept[k], saved[k]) for k in saved)
