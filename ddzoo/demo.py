"""``make demo``: the whole pipeline, offline, on the embedded defaults (a few minutes on 2 cores).

train a reference LeNet on real MNIST → Deep Defense fine-tune (short) → export ONNX fp32 / fp16 / INT8 →
verify each artifact with DeepFool against the artifact itself → publish to a local directory hub → pull it
back into a fresh cache → classify real test images through onnxruntime → print the verification table →
build the zoo's web site (``build/site``) and print where it is.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from ddzoo import constants
from ddzoo.cli import EXIT_GATE_FAILED, main
from ddzoo.package import ONNX

SITE = Path("build/site").resolve()  # outside the demo's temporary folder, so it can be opened afterwards


def zoo(*argv: str, allowed: tuple[int, ...] = (0,)) -> int:
    print(f"\n$ zoo {' '.join(argv)}", flush=True)
    code = main(list(argv))
    if code not in allowed:
        raise SystemExit(code)
    return code


def run_demo(workdir: Path) -> int:
    constants.ZOO_HOME = workdir / "cache"  # a fresh cache: the pull below really installs
    ref, dd, package, hub = (str(workdir / n) for n in ("lenet-mnist-ref", "lenet-mnist-dd", "package", "hub"))
    zoo("train", "--model", "lenet", "--dataset", "mnist", "--recipe", "reference", "--epochs", "1", "--out", ref)
    zoo("train", "--recipe", "deep-defense", "--init", ref, "--out", dd, "--epochs", "1", "--train-limit", "3000",
        "--candidates", "3", "--c", "10")
    zoo("export", dd, "--out", package, "--formats", "onnx,fp16,int8")
    gate = zoo("verify", package, "--limit", "500", "--crosscheck", "8", "--plot", f"{package}/verification.png",
               allowed=(0, EXIT_GATE_FAILED))
    if gate:
        print("(an artifact failed the robustness gate: publishing with --allow-unverified, the card says so)")
    zoo("publish", package, "--repo", "demo/lenet-mnist-dd", "--hub", hub, *(["--allow-unverified"] if gate else []))
    zoo("pull", "lenet-mnist-dd", "--hub", hub, "--offline")
    from ddzoo.data import load_split
    from ddzoo.runtime import open_runner
    from ddzoo.zoo import pull

    pulled = pull("lenet-mnist-dd", hubs=[hub], offline=True)
    x, y = load_split("mnist", "test").tensors(limit=12)
    with open_runner(pulled / ONNX) as runner:
        predicted = runner.predict(x).argmax(1)
    print(f"\nclassified 12 real MNIST test images with {runner.backend} ({runner.provider}) from {pulled}:")
    print(f"  labels:    {y.tolist()}\n  predicted: {predicted.tolist()}")
    zoo("info", "lenet-mnist-dd")
    from ddzoo.package import read_verification
    from ddzoo.printing import print_table
    from ddzoo.records import parse_records
    from ddzoo.verification import table_row

    records = parse_records(read_verification(pulled))
    print_table([table_row(r) for r in records.values()], "verification of the pulled package")
    classify_with_the_headline_model()
    zoo("site", str(SITE))  # the bundled zoo and the models pulled above, as a web page
    return 0


def classify_with_the_headline_model(name: str = "resnet-cifar10-dd") -> None:
    """Pull the zoo's headline model from the bundled hub (offline) and classify real CIFAR-10 test images."""
    from ddzoo.data import get_dataset_info, load_split

    zoo("pull", name, "--offline")
    import ddzoo

    x, y = load_split("cifar10", "test").tensors(limit=12)
    with ddzoo.load(name, format="onnx", offline=True) as runner:
        predicted = runner.predict(x).argmax(1)
    classes = get_dataset_info("cifar10").classes
    print(f"\nclassified 12 real CIFAR-10 test images with {name} ({runner.backend}, {runner.provider}):")
    print("  labels:    " + ", ".join(classes[i] for i in y.tolist()))
    print("  predicted: " + ", ".join(classes[i] for i in predicted.tolist()))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="ddzoo-demo-") as tmp:
        sys.exit(run_demo(Path(tmp)))
