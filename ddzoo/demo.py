"""``make demo``: the pipeline so far, offline, on the embedded defaults.

Trains a reference LeNet on real MNIST (2 epochs, about a minute on 2 cores), then evaluates its clean
accuracy and robustness (DeepFool ρ₂, FGS/BIM at ε_ref) on the first 1,000 test images.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from ddzoo.cli import main


def run_demo(workdir: Path) -> int:
    checkpoint = workdir / "lenet-mnist-ref"
    steps = [
        ["train", "--model", "lenet", "--dataset", "mnist", "--recipe", "reference", "--epochs", "2",
         "--out", str(checkpoint)],
        ["eval", str(checkpoint), "--dataset", "mnist", "--limit", "1000"],
    ]
    for argv in steps:
        print(f"$ zoo {' '.join(argv)}", flush=True)
        code = main(argv)
        if code:
            return code
    return 0


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="ddzoo-demo-") as tmp:
        sys.exit(run_demo(Path(tmp)))
