"""Verification speed: DeepFool against an ONNX artifact (onnxruntime in the loop, bisection to its boundary)
versus plain DeepFool on the checkpoint, same images and settings, one run.

Both: 50 iterations, K = 10 candidates, overshoot 0.02, unconstrained, batches of 500. Target: verifying the
ONNX artifact costs <= 1.5x attacking the checkpoint itself.

    python bench/verify.py [--images 1000] [--lenet CKPT] [--resnet CKPT] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from deepfool import RUNS, checkpoint  # bench/deepfool.py: the same reference checkpoints

from ddzoo.attacks import attack_copy, deepfool
from ddzoo.attacks.deepfool import l2_norms
from ddzoo.data import load_split
from ddzoo.export import export_package
from ddzoo.package import load_checkpoint
from ddzoo.runtime import open_runner
from ddzoo.train import ReferenceRecipe
from ddzoo.verification.attack import artifact_deepfool

STEPS, CANDIDATES, BATCH = 50, 10, 500


def in_batches(fn, x):
    start = time.perf_counter()
    parts = [fn(x[i : i + BATCH]) for i in range(0, len(x), BATCH)]
    seconds = time.perf_counter() - start
    r = torch.cat([p[0] for p in parts])
    fooled = torch.cat([p[1] for p in parts])
    return {"images_per_s": len(x) / seconds, "seconds": round(seconds, 2),
            "rho2": (l2_norms(r) / l2_norms(x)).mean().item(), "fooled": fooled.float().mean().item()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--lenet")
    parser.add_argument("--resnet")
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    cases = [("lenet", "mnist", checkpoint(args.lenet, "lenet", "mnist", ReferenceRecipe(epochs=2))),
             ("resnet20", "cifar10", checkpoint(args.resnet, "resnet20", "cifar10", ReferenceRecipe(epochs=3, lr=0.1)))]
    report = []
    for arch, dataset, ckpt in cases:
        package = RUNS / f"{arch}-{dataset}-package"
        if not (package / "model.onnx").is_file():
            export_package(ckpt, package, formats="onnx", parity_limit=1000)
        model = attack_copy(load_checkpoint(ckpt)[0])
        x, _ = load_split(dataset, "test").tensors(limit=args.images)
        with open_runner(package / "model.onnx", providers=["CPUExecutionProvider"]) as runner:
            def plain(xb, model=model):
                result = deepfool(model, xb, max_iter=STEPS, num_candidates=CANDIDATES)
                return result.perturbation, result.fooled

            def verified(xb, model=model, runner=runner):
                result = artifact_deepfool(model, runner, xb, max_iter=STEPS, num_candidates=CANDIDATES)
                return result.perturbation, result.fooled

            rows = {"checkpoint (torch)": in_batches(plain, x), "ONNX artifact in the loop": in_batches(verified, x)}
        cost = rows["checkpoint (torch)"]["images_per_s"] / rows["ONNX artifact in the loop"]["images_per_s"]
        print(f"\n{arch} on {dataset}: {len(x)} test images, {STEPS} iterations, K={CANDIDATES}, "
              f"torch {torch.__version__}, {torch.get_num_threads()} threads")
        print(f"{'attack':28s} {'img/s':>8s} {'rho2':>8s} {'fooled':>7s}")
        for name, row in rows.items():
            print(f"{name:28s} {row['images_per_s']:8.1f} {row['rho2']:8.4f} {row['fooled']:7.3f}")
        print(f"verification cost: {cost:.2f}x attacking the checkpoint (target <= 1.5x)")
        report.append({"arch": arch, "dataset": dataset, "checkpoint": str(ckpt), "rows": rows, "cost_ratio": cost})
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
