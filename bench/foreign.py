"""Query-only verification speed (issue 20): HopSkipJump ρ₂ of LeNet-MNIST's ONNX file through ddzoo's
ForeignOnnxRunner, against a plain ``session.run`` loop over the same batch sizes, one run.

Prints the attack's queries/s, the plain loop's queries/s at the same batches, their ratio (the cost of
foolbox, the adapter and the attack's own arithmetic), and the wall time of the ρ₂ of N images (target: 100
images within a few minutes). Measure on an idle machine.

    python bench/foreign.py [--images 100] [--steps 32] [--onnx ddzoo/hub/lenet-mnist-dd/main/model.onnx]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from ddzoo.data import load_split
from ddzoo.runtime.foreign import ForeignOnnxRunner, InputConvention
from ddzoo.verification.foreign import hop_skip_jump_norms


class Recorder:
    """Counts queries and remembers every batch size the attack asked for."""

    def __init__(self, runner: ForeignOnnxRunner):
        self.runner, self.sizes = runner, []

    def __call__(self, x):
        self.sizes.append(len(x))
        return self.runner.predict(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", default="ddzoo/hub/lenet-mnist-dd/main/model.onnx")
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--json", dest="json_out")
    args = parser.parse_args()
    x, y = load_split("mnist", "test").tensors(limit=args.images)
    runner = ForeignOnnxRunner(args.onnx, (1, 28, 28), InputConvention("nchw", output="logits"))
    recorder = Recorder(runner)
    started = time.perf_counter()
    norms = hop_skip_jump_norms(recorder, x, y, steps=args.steps, max_gradient_evals=1000)
    attack_s = time.perf_counter() - started
    queries = sum(recorder.sizes)
    session, name = runner.session, runner.session.get_inputs()[0].name
    batches = {size: np.random.default_rng(0).random((size, 1, 28, 28), dtype=np.float32)
               for size in set(recorder.sizes)}
    started = time.perf_counter()
    for size in recorder.sizes:
        session.run(None, {name: batches[size]})
    plain_s = time.perf_counter() - started
    report = {"images": args.images, "steps": args.steps, "attack_seconds": attack_s, "queries": queries,
              "queries_per_image": queries / args.images, "calls": len(recorder.sizes),
              "median_batch": float(np.median(recorder.sizes)), "attack_queries_per_s": queries / attack_s,
              "plain_session_run_queries_per_s": queries / plain_s,
              "attack_over_plain_time": attack_s / plain_s,
              "rho2": float((norms / x.flatten(1).norm(dim=1))[norms.isfinite()].mean())}
    for key, value in report.items():
        print(f"{key:34s} {value:.4g}" if isinstance(value, float) else f"{key:34s} {value}")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
