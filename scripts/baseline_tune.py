"""Tune the baselines (adversarial training, Parseval) by the rule in docs/results.md, issue 19.

Runs the candidates one after another, each ``zoo train ... --resume`` (so the script resumes where it stopped),
scores each on held-out training images with scripts/holdout_rho.py, appends the scores to RUNS/holdout.jsonl
and writes the chosen checkpoint per recipe to RUNS/chosen.json. Example (Fashion-MNIST):

    python scripts/baseline_tune.py --ref runs/final/lenet-fashion-mnist-ref --target 0.9055 \\
        --runs runs/baselines-fashion
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

PARSEVAL_BETAS = (3e-4, 1e-3, 3e-3)


class Tuner:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.runs = Path(args.runs)
        self.runs.mkdir(parents=True, exist_ok=True)
        self.scores = self.runs / "holdout.jsonl"
        self.bound = args.target - args.tolerance

    def common(self) -> list[str]:
        a = self.args
        return ["--init", a.ref, "--train-limit", str(a.train_limit), "--epochs", str(a.epochs), "--lr", str(a.lr),
                "--batch-size", str(a.batch_size), "--seed", "0", "--resume"]

    def candidate(self, name: str, options: list[str]) -> dict:
        """Train (or resume) one candidate and return its held-out score (cached in holdout.jsonl)."""
        out = self.runs / name
        for line in self.scores.read_text().splitlines() if self.scores.exists() else []:
            record = json.loads(line)
            if record["checkpoint"] == str(out):
                return record
        command = [self.args.zoo, "train", "--out", str(out), *options, *self.common()]
        print("==", " ".join(command), file=sys.stderr, flush=True)
        if not (out / "config.json").exists():
            subprocess.run(command, check=True)
        scored = subprocess.run([sys.executable, "scripts/holdout_rho.py", str(out), "--start",
                                 str(self.args.holdout_start), "--count", str(self.args.holdout_count)],
                                check=True, capture_output=True, text=True).stdout
        record = {**json.loads(scored), "command": " ".join(command),
                  "train_seconds": json.loads((out / "config.json").read_text())["metrics"]["train_seconds"]}
        with self.scores.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print("  ", json.dumps({k: record[k] for k in ("checkpoint", "accuracy", "rho2_50_normalized")}),
              file=sys.stderr, flush=True)
        return record

    def meets(self, record: dict) -> bool:
        return record["accuracy"] >= self.bound

    def choose(self, records: list[dict]) -> dict:
        matched = [r for r in records if self.meets(r)]
        if matched:
            return {**max(matched, key=lambda r: r["rho2_50_normalized"]), "matched": True}
        return {**max(records, key=lambda r: r["accuracy"]), "matched": False}

    def adversarial(self) -> dict:
        """ε from --first-eps: halved while short (at most --halvings times) or, with --largest-eps above it,
        doubled while met; then once the geometric middle of the last ε that met and the last that fell short."""
        def run(eps: float) -> dict:
            return self.candidate(f"at-linf-{eps:.4g}", ["--recipe", "adversarial", "--adv-norm", "linf",
                                                         "--adv-eps", f"{eps:.4g}", "--adv-steps", "7"])
        a = self.args
        tried = {a.first_eps: run(a.first_eps)}
        eps, factor = a.first_eps, (2.0 if self.meets(tried[a.first_eps]) else 0.5)
        while self.meets(tried[eps]) == (factor > 1) and (
                eps * 2 <= (a.largest_eps or a.first_eps) * (1 + 1e-9) if factor > 1
                else eps / 2 >= a.first_eps / 2 ** a.halvings * (1 - 1e-9)):
            eps *= factor
            tried[eps] = run(eps)
        if len(tried) > 1 and self.meets(tried[eps]) != self.meets(tried[eps / factor]):
            middle = math.sqrt(eps * eps / factor)
            tried[middle] = run(middle)
        return self.choose(list(tried.values()))

    def parseval(self) -> dict:
        records = []
        for beta in PARSEVAL_BETAS:
            records.append(self.candidate(f"parseval-{beta:g}", ["--recipe", "parseval", "--beta", f"{beta:g}"]))
            if not self.meets(records[-1]):
                break
        return self.choose(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", required=True, help="reference checkpoint every candidate fine-tunes")
    parser.add_argument("--target", type=float, required=True, help="Deep Defense's held-out accuracy")
    parser.add_argument("--tolerance", type=float, default=0.003)
    parser.add_argument("--runs", required=True)
    parser.add_argument("--recipes", default="parseval,adversarial")
    parser.add_argument("--first-eps", type=float, default=0.1, help="adversarial training's first l-inf ε")
    parser.add_argument("--halvings", type=int, default=2, help="how often ε may halve while accuracy is short")
    parser.add_argument("--largest-eps", type=float, help="ε may double up to this while accuracy is met")
    parser.add_argument("--train-limit", type=int, default=50000)
    parser.add_argument("--holdout-start", type=int, default=50000)
    parser.add_argument("--holdout-count", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--zoo", default="zoo")
    args = parser.parse_args()
    tuner = Tuner(args)
    chosen_path = tuner.runs / "chosen.json"
    chosen = json.loads(chosen_path.read_text()) if chosen_path.exists() else {}
    for recipe in args.recipes.split(","):
        chosen[recipe] = getattr(tuner, recipe)()
        chosen_path.write_text(json.dumps(chosen, indent=1) + "\n")
        print(json.dumps({recipe: chosen[recipe]}), flush=True)


if __name__ == "__main__":
    main()
