"""The registry: every entry builds, runs and matches its metadata (torchvision-style schema check)."""

import pytest
import torch

from ddzoo.errors import DuplicateNameError, InvalidArgumentError, UnknownNameError
from ddzoo.models import (
    Classifier,
    ModelSpec,
    Normalize,
    count_parameters,
    create_model,
    get_model_spec,
    list_architectures,
    register_model,
)
from ddzoo.models.paper import lenet


def test_registry_holds_the_paper_models():
    assert list_architectures() == ["convnet", "lenet", "mlp", "resnet20", "resnet20-parseval"]


@pytest.mark.parametrize("name", list_architectures())
def test_entry_builds_runs_and_matches_metadata(name):
    spec = get_model_spec(name)
    for dataset in spec.datasets:
        model = create_model(name, dataset, seed=0).eval()
        assert isinstance(model, Classifier) and isinstance(model.normalize, Normalize)
        assert list(model.children())[0] is model.normalize  # normalisation comes first
        x = torch.rand(4, *spec.input_shape)
        logits = model(x)
        assert logits.shape == (4, 10)
        assert torch.isfinite(logits).all()
        assert count_parameters(model) == spec.num_params  # buffers (mean/std) are not parameters
        assert isinstance(spec.reference, str) and spec.reference


def test_normalisation_uses_dataset_statistics():
    model = create_model("resnet20", "cifar10")
    assert model.normalize.mean.flatten().tolist() == pytest.approx([0.4914, 0.4822, 0.4465])
    x = torch.full((1, 3, 32, 32), 0.4914)
    assert model.normalize(x)[0, 0].abs().max() < 1e-6


def test_duplicate_name_rejected():
    with pytest.raises(DuplicateNameError, match="already registered"):
        register_model(ModelSpec("lenet", lenet, (1, 28, 28), ("mnist",), 431_080, "dup"))


def test_unknown_name_lists_valid_ones():
    with pytest.raises(UnknownNameError, match="choose one of: convnet, lenet, mlp, resnet20"):
        create_model("alexnet", "mnist")


def test_shape_mismatch_is_explained():
    with pytest.raises(InvalidArgumentError, match="resnet20 takes .* but mnist has"):
        create_model("resnet20", "mnist")


def test_seed_makes_weights_reproducible():
    a, b = create_model("lenet", "mnist", seed=3), create_model("lenet", "mnist", seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
