"""``zoo verify model.onnx``: ONNX classifiers ddzoo did not make, verified with queries alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from ddzoo.cli import main
from ddzoo.errors import InvalidArgumentError
from ddzoo.runtime.foreign import read_convention


class NhwcSoftmax(nn.Module):
    """A zoo LeNet as another framework would ship it: NHWC input, optionally [0, 255], softmax inside."""

    def __init__(self, model: nn.Module, scale: float = 1.0):
        super().__init__()
        self.model, self.scale = model, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x.permute(0, 3, 1, 2) / self.scale), dim=1)


def _legacy_export(module: nn.Module, path, example: torch.Tensor, outputs=("probabilities",)) -> None:
    torch.onnx.export(module.eval(), (example,), str(path), dynamo=False, input_names=["image"],
                      output_names=list(outputs), dynamic_axes={"image": {0: "n"}}, opset_version=17)


@pytest.fixture(scope="module")
def nhwc_softmax_onnx(lenet, tmp_path_factory):
    path = tmp_path_factory.mktemp("foreign") / "lenet_nhwc_softmax.onnx"
    _legacy_export(NhwcSoftmax(lenet), path, torch.rand(2, 28, 28, 1))
    return path


def test_torch_legacy_nhwc_softmax_model_is_verified_and_agrees_with_its_twin(nhwc_softmax_onnx, lenet_checkpoint,
                                                                              tmp_path, capsys):
    out = tmp_path / "record"
    assert main(["verify", str(nhwc_softmax_onnx), "--dataset", "mnist", "--limit", "12", "--decision-steps", "16",
                 "--finite-differences", "12",
                 "--twin", str(lenet_checkpoint), "--min-accuracy", "0.8", "--out", str(out),
                 "--plot", str(tmp_path / "plot.png"), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    convention = record["input"]
    assert convention["layout"] == "nhwc" and convention["probabilities"] and convention["source"] == "[0,1]"
    losses = convention["probe_cross_entropy"]
    assert convention["probe_accuracy"]["[0,1]"] > 0.9
    assert losses["[0,1]"] < min(losses["[0,255]"], losses["normalised"])
    decision, twin, fd = record["decision_based"], record["gradient_twin"], record["finite_difference"]
    assert decision["success"] == 1.0 and decision["queries_per_image"] > 100
    # Central differences see the smooth float model as its gradients do: the same ρ₂ within 10 %.
    assert fd["success"] == 1.0 and abs(fd["rho2"] / twin["rho2"] - 1) < 0.1 and fd["queries_per_image"] > 2 * 784
    # The query-only attack finds perturbations no smaller than the gradient one's, and in the same range.
    assert 1.0 <= twin["median_decision_over_gradient"] < 3.0 and twin["images_compared"] >= 10
    square = record["square"]
    assert square["eps"] == 0.3 and square["accuracy"] < record["clean_accuracy"] and square["queries_per_image"] > 1
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stored = json.loads((out / "verification.json").read_text())
    assert stored["records"]["lenet_nhwc_softmax.onnx"]["sha256"] == record["sha256"]


def test_pixel_scale_is_probed_and_the_gate_fails_loudly(lenet, tmp_path, capsys):
    path = tmp_path / "lenet_255.onnx"
    _legacy_export(NhwcSoftmax(lenet, scale=255.0), path, torch.rand(2, 28, 28, 1) * 255)
    code = main(["verify", str(path), "--dataset", "mnist", "--limit", "8", "--decision-steps", "4",
                 "--finite-differences", "0", "--eps", "0",
                 "--min-accuracy", "1.01", "--json"])
    captured = capsys.readouterr()
    record = json.loads(captured.out)
    assert record["input"]["source"] == "[0,255]" and record["input"]["scale"] == 255 and "square" not in record
    assert code == 1 and "gate failed for lenet_255.onnx: accuracy" in captured.err


def test_scikit_learn_mlp_with_label_and_probabilities(mnist_test, tmp_path, capsys):
    """skl2onnx's converters answer a label tensor and a probability tensor; the probabilities are the scores."""
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPClassifier

    from ddzoo.data import load_split

    x, y = load_split("mnist", "train").tensors(limit=3000)
    mlp = MLPClassifier(hidden_layer_sizes=(64,), max_iter=40, random_state=0).fit(x.flatten(1).numpy(), y.numpy())
    model = to_onnx(mlp, x[:1].flatten(1).numpy().astype(np.float32), options={id(mlp): {"zipmap": False}})
    path = tmp_path / "mlp.onnx"
    path.write_bytes(model.SerializeToString())
    assert main(["verify", str(path), "--dataset", "mnist", "--limit", "10", "--decision-steps", "8",
                 "--finite-differences", "0", "--eps", "0",
                 "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["input"]["layout"] == "flat" and record["input"]["output"] == "probabilities"
    assert record["input"]["probabilities"] and record["clean_accuracy"] >= 0.7
    assert record["decision_based"]["success"] == 1.0
    with_zipmap = tmp_path / "zipmap.onnx"
    with_zipmap.write_bytes(to_onnx(mlp, x[:1].flatten(1).numpy().astype(np.float32)).SerializeToString())
    assert main(["verify", str(with_zipmap), "--dataset", "mnist", "--limit", "5"]) == 1
    assert "zipmap" in capsys.readouterr().err


def test_what_cannot_be_told_is_an_error_naming_the_option(lenet, mnist_test, tmp_path, capsys):
    class TwoOutputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = lenet

        def forward(self, x):
            logits = self.model(x)
            return logits, torch.softmax(logits, 1)

    two = tmp_path / "two.onnx"
    _legacy_export(TwoOutputs(), two, torch.rand(2, 1, 28, 28), outputs=("logits", "probs"))
    probe = mnist_test.tensors(limit=16)
    stats = {"dataset_mean": (0.1307,), "dataset_std": (0.3081,), "probe": probe}
    with pytest.raises(InvalidArgumentError, match="pass --output NAME"):
        read_convention(two, (1, 28, 28), 10, **stats)
    convention, _ = read_convention(two, (1, 28, 28), 10, output="probs", **stats)
    assert convention.probabilities and convention.layout == "nchw"
    with pytest.raises(InvalidArgumentError, match="pass --layout"):
        read_convention(two, (3, 32, 32), 10, **stats)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    assert main(["verify", str(junk), "--dataset", "mnist"]) == 1
    assert "onnxruntime cannot load it" in capsys.readouterr().err
    assert main(["verify", str(two), "--limit", "4"]) == 1
    assert "needs --dataset" in capsys.readouterr().err


def test_verify_on_the_users_own_labelled_images(nhwc_softmax_onnx, mnist_test, tmp_path, capsys):
    x, y = mnist_test.tensors(limit=10)
    images = tmp_path / "mine.npz"
    np.savez(images, images=(x * 255).round().to(torch.uint8).numpy()[:, 0], labels=y.numpy())
    assert main(["verify", str(nhwc_softmax_onnx), "--images", str(images), "--decision-steps", "4",
                 "--finite-differences", "0", "--eps", "0.3", "--json"]) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out)
    assert record["images"] == 10 and record["split"] == str(images) and record["dataset"] is None
    assert record["input"]["layout"] == "nhwc" and record["clean_accuracy"] >= 0.8
    assert "model queries" in captured.err and record["estimate"]["queries"] > 0  # the time estimate


def test_a_bgr_model_is_recognised_by_its_probe(tmp_path):
    """A model whose class k is the brightness of its input's channel 2-k (an OpenCV-style BGR model):
    fed RGB it is wrong, fed BGR right, and the probe says so."""

    class BrightestBgrChannel(nn.Module):
        def forward(self, x):
            return x.mean(dim=(2, 3)).flip(1) * 10

    path = tmp_path / "bgr.onnx"
    _legacy_export(BrightestBgrChannel(), path, torch.rand(2, 3, 8, 8), outputs=("scores",))
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 8, 8, generator=generator) * 0.5
    y = torch.randint(0, 3, (64,), generator=generator)
    x[torch.arange(64), y] += 0.5  # the labelled channel (RGB order) is the brightest
    stats = {"dataset_mean": (0.5, 0.5, 0.5), "dataset_std": (0.25, 0.25, 0.25), "probe": (x, y)}
    convention, probed = read_convention(path, (3, 8, 8), 3, scale=1.0, **stats)
    assert convention.bgr and probed["probe_accuracy"]["given bgr"] == 1.0
    assert probed["probe_accuracy"]["given rgb"] < 0.7
    with pytest.raises(InvalidArgumentError, match="above chance"):  # told RGB: obeyed, and found wanting
        read_convention(path, (3, 8, 8), 3, scale=1.0, channels="rgb", **stats)
