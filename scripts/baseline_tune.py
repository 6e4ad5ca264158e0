"""Tune the baselines (adversarial training, Parseval) by the rule in docs/results/across-datasets.md, issue 19.

Runs the candidates one after another, each ``zoo train ... --resume`` (so the script resumes where it stopped),
scores each on held-out training images (scripts/holdout_rho.py's holdout_metrics), appends the scores to
RUNS/holdout.jsonl and writes the chosen checkpoint per recipe to RUNS/chosen.json. Example (Fashion-MNIST):

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

from holdout_rho import holdout_metrics  # scripts/ is on sys.path when this runs as a script

BETAS = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3)  # Parseval's ladder, half decades


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
        record = {**self.score(str(out)), "command": " ".join(command),
                  "train_seconds": json.loads((out / "config.json").read_text())["metrics"]["train_seconds"]}
        with self.scores.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print("  ", json.dumps({k: record[k] for k in ("checkpoint", "accuracy", "rho2_50_normalized")}),
              file=sys.stderr, flush=True)
        return record

    def score(self, checkpoint: str) -> dict:
        """scripts/holdout_rho.py's record of ``checkpoint`` on the held-out images."""
        return holdout_metrics(checkpoint, self.args.holdout_start, self.args.holdout_count)

    def meets(self, record: dict) -> bool:
        return record["accuracy"] >= self.bound

    def choose(self, records: list[dict]) -> dict:
        matched = [r for r in records if self.meets(r)]
        if matched:
            return {**max(matched, key=lambda r: r["rho2_50_normalized"]), "matched": True}
        return {**max(records, key=lambda r: r["accuracy"]), "matched": False}

    def ladder(self, run, value, up: int, down: int, middle: bool) -> dict:
        """Candidates ``value(0)``, then ``value(1), value(2) ...`` while the bound is met (at most ``up``) or
        ``value(-1), value(-2) ...`` while it is not (at most ``down``); with ``middle``, then once the geometric
        middle of the last value that met and the last that fell short. Returns the chosen record."""
        tried = {0: run(value(0))}
        step = 1 if self.meets(tried[0]) else -1
        k = 0
        while self.meets(tried[k]) == (step > 0) and abs(k + step) <= (up if step > 0 else down):
            k += step
            tried[k] = run(value(k))
        records = list(tried.values())
        if middle and k != 0 and self.meets(tried[k]) != self.meets(tried[k - step]):
            records.append(run(math.sqrt(value(k) * value(k - step))))
        return self.choose(records)

    def adversarial(self) -> dict:
        a = self.args
        return self.ladder(lambda eps: self.candidate(
            f"at-linf-{eps:.4g}", ["--recipe", "adversarial", "--adv-norm", "linf", "--adv-eps", f"{eps:.4g}",
                                   "--adv-steps", "7"]),
            lambda k: a.first_eps * 2.0 ** k, round(math.log2((a.largest_eps or a.first_eps) / a.first_eps)),
            a.halvings, True)

    def parseval(self) -> dict:
        first = BETAS.index(self.args.first_beta)
        return self.ladder(lambda beta: self.candidate(f"parseval-{beta:g}", ["--recipe", "parseval", "--beta",
                                                                             f"{beta:g}"]),
                           lambda k: BETAS[first + k], len(BETAS) - 1 - first, first, False)


def table(tuner: Tuner) -> None:
    """The held-out rounds as a markdown table, ratios against the reference scored the same way."""
    def scored(checkpoint: str, file: str) -> dict:
        if not (tuner.runs / file).exists():
            (tuner.runs / file).write_text(json.dumps(tuner.score(checkpoint)) + "\n")
        return json.loads((tuner.runs / file).read_text())

    def gap(record: dict) -> float:  # accuracy minus Deep Defense's, in points, without "-0.00"
        return round(100 * (record["accuracy"] - tuner.args.target), 2) + 0.0

    reference = scored(tuner.args.ref, "reference.json")
    chosen = {r["checkpoint"] for r in json.loads((tuner.runs / "chosen.json").read_text()).values()}
    print("| candidate | held-out accuracy | Δ vs Deep Defense | held-out ρ₂ (× reference) | training s |\n"
          "|---|---:|---:|---:|---:|")
    for name, r in (("reference", reference), *((("Deep Defense", scored(tuner.args.dd, "deep-defense.json")),)
                                                 if tuner.args.dd else ())):
        print(f"| {name} | {100 * r['accuracy']:.2f} % | {gap(r):+.2f} | "
              f"{r['rho2_50_normalized']:.4f} ({r['rho2_50_normalized'] / reference['rho2_50_normalized']:.2f}×) | – |")
    for line in tuner.scores.read_text().splitlines():
        r = json.loads(line)
        recipe = r["recipe"]
        name = (f"adversarial ε = {recipe['eps']:.4g}" if recipe["name"] == "adversarial"
                else f"Parseval β = {recipe['beta']:g}")
        name = f"**{name} (chosen)**" if r["checkpoint"] in chosen else name
        print(f"| {name} | {100 * r['accuracy']:.2f} % | {gap(r):+.2f} | "
              f"{r['rho2_50_normalized']:.4f} ({r['rho2_50_normalized'] / reference['rho2_50_normalized']:.2f}×) | "
              f"{r['train_seconds']:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", required=True, help="reference checkpoint every candidate fine-tunes")
    parser.add_argument("--target", type=float, required=True, help="Deep Defense's held-out accuracy")
    parser.add_argument("--tolerance", type=float, default=0.003)
    parser.add_argument("--runs", required=True)
    parser.add_argument("--recipes", default="parseval,adversarial")
    parser.add_argument("--first-eps", type=float, default=0.1, help="adversarial training's first l-inf ε")
    parser.add_argument("--halvings", type=int, default=4, help="how often ε may halve while accuracy is short")
    parser.add_argument("--first-beta", type=float, default=3e-4, choices=BETAS, help="Parseval's first β")
    parser.add_argument("--largest-eps", type=float, help="ε may double up to this while accuracy is met")
    parser.add_argument("--train-limit", type=int, default=50000)
    parser.add_argument("--holdout-start", type=int, default=50000)
    parser.add_argument("--holdout-count", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--zoo", default="zoo")
    parser.add_argument("--table", action="store_true", help="print the rounds so far as a markdown table")
    parser.add_argument("--dd", help="with --table: the Deep Defense checkpoint, scored the same way")
    args = parser.parse_args()
    tuner = Tuner(args)
    if args.table:
        return table(tuner)
    chosen_path = tuner.runs / "chosen.json"
    chosen = json.loads(chosen_path.read_text()) if chosen_path.exists() else {}
    for recipe in args.recipes.split(","):
        chosen[recipe] = getattr(tuner, recipe)()
        chosen_path.write_text(json.dumps(chosen, indent=1) + "\n")
        print(json.dumps({recipe: chosen[recipe]}), flush=True)


if __name__ == "__main__":
    main()
