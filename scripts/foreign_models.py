"""Issue 20's demonstration: two ONNX classifiers that ddzoo's exporter did not make, verified by queries alone.

1. ``lenet-mnist-dd`` re-exported as another team would ship it: the legacy TorchScript-based exporter, NHWC
   input, softmax inside (its zoo package is the ``--twin`` for gradient DeepFool on the same model).
2. A scikit-learn MLP (one hidden layer of 128) trained on the first 20,000 MNIST training images and
   converted with skl2onnx (``zipmap=False``: a label tensor and a probability tensor).

    python scripts/foreign_models.py --out runs/foreign [--limit 100]

Writes both ONNX files and each ``zoo verify --json`` record under ``--out``; docs/results/foreign-onnx.md quotes them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ddzoo.data import load_split
from ddzoo.package import load_checkpoint

TWIN = "ddzoo/hub/lenet-mnist-dd/main"


class NhwcSoftmax(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x.permute(0, 3, 1, 2)), dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/foreign"))
    parser.add_argument("--limit", type=int, default=100)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch_onnx = args.out / "lenet_mnist_dd_nhwc_softmax.onnx"
    model, _ = load_checkpoint(TWIN)
    torch.onnx.export(NhwcSoftmax(model.eval()), (torch.rand(2, 28, 28, 1),), str(torch_onnx), dynamo=False,
                      input_names=["image"], output_names=["probabilities"], dynamic_axes={"image": {0: "n"}},
                      opset_version=17)
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPClassifier

    x, y = load_split("mnist", "train").tensors(limit=20000)
    mlp = MLPClassifier(hidden_layer_sizes=(128,), max_iter=30, random_state=0).fit(x.flatten(1).numpy(), y.numpy())
    sklearn_onnx = args.out / "sklearn_mlp_mnist.onnx"
    sklearn_onnx.write_bytes(to_onnx(mlp, x[:1].flatten(1).numpy().astype(np.float32),
                                     options={id(mlp): {"zipmap": False}}).SerializeToString())
    runs = {torch_onnx: ["--twin", TWIN], sklearn_onnx: []}
    for path, extra in runs.items():
        command = [sys.executable, "-m", "ddzoo.cli", "verify", str(path), "--dataset", "mnist", "--limit",
                   str(args.limit), "--finite-differences", str(args.limit), "--json", *extra]
        print(" ".join(command[2:]), file=sys.stderr)
        record = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        (args.out / f"{path.stem}.verify.json").write_text(record)


if __name__ == "__main__":
    main()
