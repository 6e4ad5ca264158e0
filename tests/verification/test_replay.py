"""The replay pipeline: the checkpoint's attacks replayed on artifacts give the records the artifact-in-the-loop
pipeline gives, attacking with the artifact in the loop only the images that leave the checkpoint's path."""

from __future__ import annotations

import shutil

import pytest
import torch

from ddzoo.attacks import attack_copy
from ddzoo.attacks.deepfool import DeepFoolTrace, deepfool
from ddzoo.package import load_checkpoint
from ddzoo.verification import VerifySettings, verify_package
from ddzoo.verification.attack import ModulePredictor, artifact_deepfool_budgets
from ddzoo.verification.replay import replay_deepfool

SETTINGS = {"limit": 60, "square_images": 0, "batch_size": 30}
ARTIFACTS = ["model.onnx", "model.int8.onnx"]  # fp16 behaves as fp32 here


@pytest.fixture(scope="module")
def both(lenet_package, tmp_path_factory):
    """The same package verified by the replay pipeline and with every image in the loop."""
    records = {}
    for replay in (True, False):
        copy = tmp_path_factory.mktemp("replay") / "package"
        shutil.copytree(lenet_package, copy)
        records[replay] = verify_package(copy, artifacts=ARTIFACTS,
                                         settings=VerifySettings(replay=replay, **SETTINGS))["records"]
    return records


@pytest.mark.parametrize("artifact", ARTIFACTS)
def test_replay_gives_the_in_the_loop_records(both, artifact):
    """Accuracy and the FGS / BIM grid identical, ρ₂ at every budget and its ratio within 1 %, same verdict."""
    new, old = both[True][artifact], both[False][artifact]
    assert new["clean_accuracy"] == old["clean_accuracy"] and new["top1_agreement"] == old["top1_agreement"]
    assert new["fgs"] == old["fgs"] and new["bim"] == old["bim"]
    for key in ("5", "50", "box_constrained"):
        assert new["deepfool"][key]["rho2"] == pytest.approx(old["deepfool"][key]["rho2"], rel=0.01), key
        assert new["deepfool"][key]["fooled"] == pytest.approx(old["deepfool"][key]["fooled"], abs=0.01), key
    assert new["rho2_ratio"] == pytest.approx(old["rho2_ratio"], rel=0.01)
    assert new["gate"]["passed"] == old["gate"]["passed"]
    assert old["method"]["images_in_the_loop"]["50"] == SETTINGS["limit"]  # the old way: every image
    assert "replayed" in new["method"]["deepfool"]


def test_an_fp32_artifact_stays_on_the_checkpoints_path(both):
    """ONNX Runtime fp32 takes the checkpoint's decisions on (almost) every image: next to nothing is redone."""
    left = both[True]["model.onnx"]["method"]["images_in_the_loop"]
    assert set(left) == {"5", "50", "box_constrained"}
    assert left["50"] <= 1 and left["box_constrained"] <= 1, left


def test_images_leaving_the_path_are_attacked_on_the_artifact(lenet_package, mnist_test):
    """An 'artifact' that is another network leaves the path on most images; those get the artifact-in-the-loop
    result exactly, and the ones kept got the same decisions at every traced point."""
    checkpoint = attack_copy(load_checkpoint(lenet_package)[0])
    other = attack_copy(load_checkpoint(lenet_package)[0])
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    x, _ = mnist_test.tensors(limit=60)
    trace = DeepFoolTrace()
    common = {"num_candidates": 10, "overshoot": 0.02, "bisection_steps": 8}
    mine = artifact_deepfool_budgets(checkpoint, ModulePredictor(checkpoint), x, (5, 50), trace=trace, **common)
    artifact = ModulePredictor(other)
    with torch.no_grad():
        same_start = other(x).argmax(1) == checkpoint(x).argmax(1)
    replayed, left, searched = replay_deepfool(checkpoint, artifact, x, mine, trace, same_start, tolerance=None,
                                               **common)
    assert left.float().mean() > 0.5 and not any((left & s).any() for s in searched.values())
    fresh = artifact_deepfool_budgets(checkpoint, artifact, x[left], (5, 50), **common)
    for budget in (5, 50):
        kept, moved_rows = ~left & ~searched[budget], searched[budget]
        assert torch.equal(replayed[budget].perturbation[left], fresh[budget].perturbation)
        assert torch.equal(replayed[budget].perturbation[kept], mine[budget].perturbation[kept])
        moved = replayed[budget].perturbation[moved_rows]  # the same direction, onto the artifact's boundary
        assert torch.allclose(torch.nn.functional.cosine_similarity(moved.flatten(1),
                                                                     mine[budget].unshrunk[moved_rows].flatten(1)),
                              torch.ones(int(moved_rows.sum())), atol=1e-5)
        with torch.no_grad():  # every replayed perturbation fools the artifact it is reported for
            fooled = other(x + replayed[budget].perturbation).argmax(1) != replayed[budget].start_labels
        assert torch.equal(fooled, replayed[budget].fooled)


def test_a_trace_records_every_check_and_step(lenet_package, mnist_test):
    """The trace holds one step per iteration an image took and a verdict per check, the last one its result."""
    model = attack_copy(load_checkpoint(lenet_package)[0])
    x, _ = mnist_test.tensors(limit=50)
    trace = DeepFoolTrace()
    result = deepfool(model, x, max_iter=50, trace=trace)
    steps = torch.zeros(len(x), dtype=torch.long)
    for rows, *_ in trace.steps:
        steps[rows] += 1
    assert torch.equal(steps, result.iterations)
    last = torch.zeros(len(x), dtype=torch.bool)
    for rows, points, verdicts in trace.checks:
        last[rows] = verdicts
        with torch.no_grad():
            assert torch.equal(model(points).argmax(1) != result.start_labels[rows], verdicts)
    assert torch.equal(last, result.fooled)


def test_a_redone_line_search_never_reports_a_perturbation_that_does_not_fool(lenet_package, mnist_test):
    """An artifact a hair away from the checkpoint (the last layer's bias moved) keeps its decisions but moves
    the brackets; at a 1-iteration budget many perturbations had to be stretched by the checkpoint's line search.
    Every perturbation the replay reports as fooling fools the artifact, and no other does."""
    checkpoint = attack_copy(load_checkpoint(lenet_package)[0])
    other = attack_copy(load_checkpoint(lenet_package)[0])
    last = [m for m in other.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.bias.add_(0.05 * torch.randn(last.bias.shape, generator=torch.Generator().manual_seed(0)))
    x, _ = mnist_test.tensors(limit=60)
    trace = DeepFoolTrace()
    common = {"num_candidates": 10, "overshoot": 0.02, "bisection_steps": 8}
    mine = artifact_deepfool_budgets(checkpoint, ModulePredictor(checkpoint), x, (1, 50), trace=trace, **common)
    with torch.no_grad():
        same_start = other(x).argmax(1) == checkpoint(x).argmax(1)
    replayed, left, searched = replay_deepfool(checkpoint, ModulePredictor(other), x, mine, trace, same_start,
                                               tolerance=None, **common)
    assert searched[1].sum() > 0 and (mine[1].high > 1).any()  # the case: stretched perturbations, searched again
    for budget in (1, 50):
        with torch.no_grad():
            fooled = other(x + replayed[budget].perturbation).argmax(1) != replayed[budget].start_labels
        assert torch.equal(fooled, replayed[budget].fooled), budget
