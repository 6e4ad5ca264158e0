"""``zoo verify model.onnx``: ONNX classifiers ddzoo did not make, verified with queries alone; and what such
files do to confuse it (ZipMap outputs, an input of another size, dynamic sizes, a twin of another network,
missing external data), each one line with a documented exit code."""

from __future__ import annotations

import copy
import json
import re

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
    assert twin["agreement"]["blend_agreement"] >= 0.95 and twin["agreement"]["blends"] == 256
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
    assert code == 3 and "gate failed for lenet_255.onnx: accuracy" in captured.err  # 3: a failed gate


@pytest.fixture(scope="module")
def mlp(data_dir):
    """A scikit-learn MLP on 3000 MNIST training images (about 90 % test accuracy)."""
    from sklearn.neural_network import MLPClassifier

    from ddzoo.data import load_split

    x, y = load_split("mnist", "train").tensors(limit=3000)
    return MLPClassifier(hidden_layer_sizes=(64,), max_iter=40, random_state=0).fit(x.flatten(1).numpy(), y.numpy())


def _skl_onnx(model, path, zipmap: bool = True):
    from skl2onnx import to_onnx

    options = None if zipmap else {id(model): {"zipmap": False}}
    path.write_bytes(to_onnx(model, np.zeros((1, 784), np.float32), options=options).SerializeToString())
    return path


def test_scikit_learn_mlp_with_label_and_probabilities(mlp, tmp_path, capsys):
    """skl2onnx's converters answer a label tensor and a probability tensor: with ``zipmap: False`` a (N, K)
    tensor, by default ZipMap's sequence of {class: probability} maps. Both are read, with the same result."""
    records = {}
    for zipmap in (False, True):
        path = _skl_onnx(mlp, tmp_path / f"mlp-{zipmap}.onnx", zipmap)
        assert main(["verify", str(path), "--dataset", "mnist", "--limit", "10", "--decision-steps", "8",
                     "--finite-differences", "0", "--eps", "0", "--json"]) == 0
        records[zipmap] = json.loads(capsys.readouterr().out)
    for zipmap, record in records.items():
        assert record["input"]["layout"] == "flat" and record["input"]["probabilities"]
        assert record["input"]["output"] == ("output_probability" if zipmap else "probabilities")
        assert record["clean_accuracy"] >= 0.7 and record["decision_based"]["success"] == 1.0
    assert records[True]["clean_accuracy"] == records[False]["clean_accuracy"]
    assert records[True]["input"]["probe_accuracy"] == records[False]["input"]["probe_accuracy"]


@pytest.mark.parametrize("labels", ["int64", "digit strings", "names"])
def test_zipmap_probabilities_become_the_class_columns(mlp, mnist_test, tmp_path, labels):
    from ddzoo.runtime.foreign import ForeignOnnxRunner

    model = copy.deepcopy(mlp)
    if labels != "int64":
        model.classes_ = np.array([str(c) if labels == "digit strings" else f"class {c}" for c in mlp.classes_])
    path = _skl_onnx(model, tmp_path / "zipmap.onnx")
    x, y = mnist_test.tensors(limit=64)
    stats = {"dataset_mean": (0.1307,), "dataset_std": (0.3081,), "probe": (x, y)}
    if labels == "names":
        with pytest.raises(InvalidArgumentError, match=r"labels the classes \['class 0', .*not 0..K-1"):
            read_convention(path, (1, 28, 28), 10, **stats)
        return
    convention, _ = read_convention(path, (1, 28, 28), 10, output="output_probability", **stats)
    with ForeignOnnxRunner(path, (1, 28, 28), convention) as runner:
        scores = runner.predict(x)
    expected = mlp.predict_proba(x.flatten(1).numpy())
    assert scores.shape == (64, 10) and convention.probabilities
    np.testing.assert_allclose(scores.exp().numpy(), expected, atol=1e-4)


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
    with pytest.raises(InvalidArgumentError, match="the model takes 1x28x28 inputs and the images are 3x32x32"):
        read_convention(two, (3, 32, 32), 10, **stats)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    assert main(["verify", str(junk), "--dataset", "mnist"]) == 2  # usage: not a file the command takes
    assert "onnxruntime cannot load it" in capsys.readouterr().err
    assert main(["verify", str(two), "--limit", "4"]) == 2
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
    assert re.search(r"roughly \d+ s \(", captured.err) and " 0.0 min" not in captured.err  # a short run: seconds


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


def test_the_time_estimate_speaks_in_seconds_minutes_or_hours():
    from ddzoo.verification.foreign import _duration

    assert [_duration(s) for s in (0.2, 31, 89, 150, 3600, 7200)] == ["1 s", "31 s", "89 s", "2.5 min", "60.0 min",
                                                                      "2.0 h"]


class Tiny(nn.Module):
    """A small untrained classifier of ``channels``-channel images of any size."""

    def __init__(self, channels: int = 3, nhwc: bool = False):
        super().__init__()
        self.nhwc, self.conv, self.fc = nhwc, nn.Conv2d(channels, 4, 3), nn.Linear(4, 10)

    def forward(self, x):
        return self.fc(self.conv(x.permute(0, 3, 1, 2) if self.nhwc else x).mean((2, 3)))


@pytest.mark.parametrize("nhwc", [False, True], ids=["nchw model", "nhwc model"])
@pytest.mark.parametrize("layout", [None, "nchw", "nhwc", "flat"])
def test_a_model_of_another_input_size_is_told_so(data_dir, tmp_path, nhwc, layout, capsys):
    """A 3x32x32 model against MNIST: one line naming both sizes, with or without --layout (it once asked for
    --layout, and with it ended in an internal error)."""
    path = tmp_path / "cifar_sized.onnx"
    _legacy_export(Tiny(3, nhwc), path, torch.rand(2, *((32, 32, 3) if nhwc else (3, 32, 32))), outputs=("logits",))
    code = main(["verify", str(path), "--dataset", "mnist", *(["--layout", layout] if layout else [])])
    err = capsys.readouterr().err
    takes = "32x32x3" if nhwc else "3x32x32"
    assert code == 2 and err.count("\n") == 1 and "internal error" not in err
    assert f"the model takes {takes} inputs and mnist's images are 1x28x28" in err


def test_a_layout_the_model_cannot_take_names_the_one_it_can(nhwc_softmax_onnx, data_dir, capsys):
    assert main(["verify", str(nhwc_softmax_onnx), "--dataset", "mnist", "--layout", "nchw"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("its input shape 28x28x1 cannot take 1x28x28 images as --layout nchw (that "
                                     "needs 1x28x28); it takes them as nhwc: pass --layout nhwc") in err


@pytest.mark.parametrize("shape, axes, expected", [
    ((2, 1, 28, 28), {0: "n", 2: "h", 3: "w"}, "nchw"),
    ((2, 28, 28, 1), {0: "n", 1: "h", 2: "w"}, "nhwc"),
    ((2, 1, 28, 28), {0: "n", 1: "c", 2: "h", 3: "w"}, "pass --layout nchw|nhwc"),
    ((2, 3, 28, 28), {0: "n", 2: "h", 3: "w"}, "takes 3x?x? inputs and the images are 1x28x28"),
])
def test_dynamic_height_and_width_need_no_layout_when_the_channels_are_known(lenet, mnist_test, tmp_path, shape,
                                                                             axes, expected):
    nhwc = shape[-1] in (1, 3)
    module = NhwcSoftmax(lenet) if nhwc else (lenet if shape[1] == 1 else Tiny(3))
    path = tmp_path / "dynamic.onnx"
    torch.onnx.export(module.eval(), (torch.rand(*shape),), str(path), dynamo=False, input_names=["image"],
                      output_names=["scores"], dynamic_axes={"image": axes}, opset_version=17)
    stats = {"dataset_mean": (0.1307,), "dataset_std": (0.3081,), "probe": mnist_test.tensors(limit=32)}
    if expected in ("nchw", "nhwc"):
        convention, probed = read_convention(path, (1, 28, 28), 10, **stats)
        assert convention.layout == expected and max(probed["probe_accuracy"].values()) > 0.9
    else:
        with pytest.raises(InvalidArgumentError, match=re.escape(expected)):
            read_convention(path, (1, 28, 28), 10, **stats)


NOT_THE_SAME = (r"--twin is not the same network as {file}: they predict the same class on \d+\.\d % of 256 blended "
                r"images \(\d+\.\d % of the 12 verified ones\), and a twin must agree on at least 95 %")


@pytest.mark.parametrize("file, dataset, twin, message", [
    (None, "mnist", "lenet-mnist-dd", NOT_THE_SAME),  # a LeNet trained otherwise: 98 % accurate like this one
    (None, "mnist", "resnet-cifar10-ref", NOT_THE_SAME),  # takes the images (its normalisation broadcasts)
    ("resnet-cifar10-ref", "cifar10", "lenet-mnist-dd", r"--twin cannot classify these \[3, 32, 32\] images"),
])
def test_a_twin_of_another_network_is_refused_before_any_attack(nhwc_softmax_onnx, file, dataset, twin, message,
                                                                 capsys):
    """A differently trained LeNet (the bundled Deep Defense one) once passed as the twin of this file and gave
    a twin ρ₂ and ratio of another network; now the agreement on blended images is measured first."""
    from ddzoo.zoo.hubs import BUNDLED_HUB

    path = nhwc_softmax_onnx if file is None else BUNDLED_HUB / file / "main" / "model.onnx"
    code = main(["verify", str(path), "--dataset", dataset, "--limit", "12", "--twin", twin])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and re.search(message.format(file=re.escape(path.name)), err), err
    assert "model queries" not in err  # refused before the attacks were even estimated


def test_a_missing_external_data_file_is_named_in_full(lenet, data_dir, tmp_path, capsys):
    import onnx

    folder = tmp_path.joinpath(*["a-rather-long-folder-name"] * 8)
    folder.mkdir(parents=True)
    path = folder / "lenet_external.onnx"
    _legacy_export(lenet, tmp_path / "inline.onnx", torch.rand(2, 1, 28, 28), outputs=("logits",))
    onnx.save(onnx.load(str(tmp_path / "inline.onnx")), str(path), save_as_external_data=True,
              all_tensors_to_one_file=True, location="lenet_external.weights", size_threshold=0)
    from ddzoo.runtime.ort import missing_external_data, ort_session

    assert missing_external_data(path) == [] and ort_session(path)[0] is not None  # loads while the file is there
    (folder / "lenet_external.weights").unlink()
    assert missing_external_data(path) == ["lenet_external.weights"]
    assert main(["verify", str(path), "--dataset", "mnist", "--limit", "4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "external data files that are not beside it: 'lenet_external.weights'" in err
    assert f"(looked for in {folder})" in err and "is it" not in err  # the whole path, and no guessing
