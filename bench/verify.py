"""Verification speed: the replay pipeline against the artifact-in-the-loop pipeline it replaced, one run.

Both verify copies of the same package (checkpoint, fp32, fp16 and INT8 ONNX artifacts) on the same test images
with the same settings. The old pipeline is the package as it was at ``--old`` (default: the last commit before
the replay pipeline), extracted with ``git archive`` and run in a subprocess; the new one is this checkout. Prints
each pipeline's wall time, their ratio, and the records compared artifact by artifact: clean accuracy (must be
identical), ρ₂ at every budget and the ρ₂ ratio (within 1 %), the gate verdicts (the same), and how many images
left the checkpoint's path (attacked with the artifact in the loop).

    python bench/verify.py [--package DIR_OR_NAME] [--images 1000] [--square 100] [--old REV] [--json OUT]
                           [--only new | --reuse-old]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from ddzoo.export import export_package
from ddzoo.package import package_files
from ddzoo.verification import VerifySettings, verify_package

RUNS = Path("runs/bench")
OLD = "616655c"  # main before the replay pipeline (issue 28)
OLD_RUN = """
import json, sys, time
import torch
torch.set_num_threads(2)
from ddzoo.verification import VerifySettings, verify_package
started = time.perf_counter()
verify_package(sys.argv[1], settings=VerifySettings(limit=int(sys.argv[2]), square=int(sys.argv[3])))
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def full_package(source: str) -> Path:
    """The package with all three ONNX precisions (the bundled one lacks INT8: exported once into runs/bench)."""
    from ddzoo.api import _folder

    folder = _folder(source, None, None)
    if (folder / "model.int8.onnx").is_file():
        return folder
    target = RUNS / f"{Path(source).name}-full"
    if not (target / "model.int8.onnx").is_file():
        print(f"exporting {folder} with fp16 and int8 into {target}", file=sys.stderr)
        export_package(folder, target, formats="onnx,fp16,int8", parity_limit=1000)
    return target


def fresh_copy(package: Path, target: Path) -> Path:
    """A copy of the package without verification records."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for file in package_files(package):
        if file != "verification.json":
            (target / file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(package / file, target / file)
    return target


def run_old(rev: str, package: Path, images: int, square: int) -> float:
    tree = RUNS / f"ddzoo-{rev}"
    if not (tree / "ddzoo").is_dir():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", rev, "ddzoo"], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    done = subprocess.run([sys.executable, "-c", OLD_RUN, str(package.resolve()), str(images), str(square)],
                          cwd=tree, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def compare(old: dict, new: dict) -> list[dict]:
    rows = []
    for name, record in new["records"].items():
        before = old["records"][name]
        method = record.get("method", {})
        row = {"artifact": name, "accuracy_same": before["clean_accuracy"] == record["clean_accuracy"],
               "gate_same": before["gate"]["passed"] == record["gate"]["passed"],
               "in_the_loop": method.get("images_in_the_loop", {}),
               "line_search": method.get("images_line_search_redone", {})}
        for key in ("5", "50", "box_constrained"):
            row[f"rho2 {key}"] = record["deepfool"][key]["rho2"] / before["deepfool"][key]["rho2"] - 1
        row["rho2 ratio"] = record["rho2_ratio"] / before["rho2_ratio"] - 1
        row["within_1pct"] = all(abs(v) <= 0.01 for k, v in row.items() if k.startswith("rho2"))
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package", default="resnet-cifar10-dd")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--square", type=int, default=100)
    parser.add_argument("--old", default=OLD)
    parser.add_argument("--only", choices=["new"], help="skip the old pipeline (time the new one alone)")
    parser.add_argument("--reuse-old", action="store_true",
                        help="compare with the old pipeline's record and time from an earlier run of this script")
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    package = full_package(args.package)
    report: dict = {"package": str(package), "images": args.images, "square": args.square,
                    "torch": torch.__version__, "threads": torch.get_num_threads()}
    new_copy = fresh_copy(package, RUNS / "verify-new")
    started = time.perf_counter()
    new = verify_package(new_copy, settings=VerifySettings(limit=args.images, square_images=args.square))
    report["new_seconds"] = time.perf_counter() - started
    print(f"new (replay) pipeline: {report['new_seconds']:.1f} s on {args.images} images, Square on {args.square}")
    if args.only != "new":
        earlier = json.loads(Path(args.json).read_text()) if args.reuse_old and args.json else {}
        if "old_seconds" in earlier and (earlier["images"], earlier["square"]) == (args.images, args.square):
            report["old_seconds"], old_copy = earlier["old_seconds"], RUNS / "verify-old"
        else:
            old_copy = fresh_copy(package, RUNS / "verify-old")
            report["old_seconds"] = run_old(args.old, old_copy, args.images, args.square)
        old = json.loads((old_copy / "verification.json").read_text())
        report["speedup"] = report["old_seconds"] / report["new_seconds"]
        report["records"] = compare(old, new)
        print(f"old (in-the-loop, {args.old}) pipeline: {report['old_seconds']:.1f} s -> speed-up "
              f"{report['speedup']:.2f}x")
        print(f"{'artifact':20s} {'acc same':>8s} {'gate same':>9s} {'Δρ₂ 5':>8s} {'Δρ₂ 50':>8s} {'Δρ₂ box':>8s} "
              f"{'Δratio':>8s}  in the loop / line search redone")
        for row in report["records"]:
            print(f"{row['artifact']:20s} {row['accuracy_same']!s:>8s} {row['gate_same']!s:>9s} "
                  f"{100 * row['rho2 5']:+7.2f}% {100 * row['rho2 50']:+7.2f}% "
                  f"{100 * row['rho2 box_constrained']:+7.2f}% "
                  f"{100 * row['rho2 ratio']:+7.2f}%  {row['in_the_loop']} / {row['line_search']}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
