"""DeepFool speed: ddzoo vs torchattacks 3.5.1 vs foolbox 3.3.4, same model, images and settings, one run.

ddzoo runs on its attack copy (``attack_copy``); torchattacks and foolbox on both it and the stock copy
(``folded_copy``: batch norm folded, stock layers), since either may be the faster one for them. Settings
shared by all: 50 steps, overshoot 0.02, start from the predicted label, images kept in [0, 1] inside the loop
(the only mode torchattacks and foolbox offer); ddzoo linearises at the overshoot point as foolbox does, with the
bfloat16 candidate screen ``zoo eval`` uses where bfloat16 is native (and once without it: "float32 only").
torchattacks always uses every class as a candidate, so K = 10 = all classes. ddzoo's unconstrained run (the
paper's ρ₂) is printed too. Ratios are ddzoo's images/s over each library's, measured in the same process,
interleaved: each of ``--rounds`` chunks of the images is attacked by every method in turn, so a drift in the
machine's speed weighs on all of them alike.

    python bench/deepfool.py [--images 1000] [--rounds 4] [--models lenet resnet20] [--lenet CKPT] [--resnet CKPT]
                             [--device cpu] [--json OUT]

Missing checkpoints are trained first with the zoo's own trainer (commands printed) into runs/bench/.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from ddzoo.attacks import attack_copy, deepfool
from ddzoo.attacks.deepfool import SCREEN, bf16_is_fast, l2_norms
from ddzoo.attacks.prepare import folded_copy
from ddzoo.data import load_split
from ddzoo.package import load_checkpoint
from ddzoo.train import ReferenceRecipe, train_reference

STEPS, OVERSHOOT, CANDIDATES = 50, 0.02, 10
RUNS = Path("runs/bench")


def timed(fn):
    start = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def ours(model, x, bounds, screen):
    result = deepfool(model, x, max_iter=STEPS, overshoot=OVERSHOOT, num_candidates=CANDIDATES, bounds=bounds,
                      linearize_at="overshoot", screen=screen)
    return x + result.perturbation


def ours_batched(model, x, bounds, screen, batch=500):
    return torch.cat([ours(model, x[i : i + batch], bounds, screen) for i in range(0, len(x), batch)])


def foolbox_attack(model, x, labels):
    import foolbox as fb

    fmodel = fb.PyTorchModel(model, bounds=(0.0, 1.0))
    attack = fb.attacks.L2DeepFoolAttack(steps=STEPS, candidates=CANDIDATES, overshoot=OVERSHOOT, loss="logits")
    outs = [attack(fmodel, x[i : i + 500], fb.criteria.Misclassification(labels[i : i + 500]), epsilons=None)[1]
            for i in range(0, len(x), 500)]
    return torch.cat(outs)


def torchattacks_attack(model, x, labels):
    import torchattacks

    return torchattacks.DeepFool(model, steps=STEPS, overshoot=OVERSHOOT)(x, labels)


def measure(methods: dict, model, x, rounds: int) -> list[dict]:
    """Each method's images/s, fooled rate and ρ₂ on ``x``, measured in ``rounds`` interleaved chunks.

    Every chunk of images is attacked by every method in turn (the order rotating), so a change in the
    machine's speed during the run (another tenant, CPU steal) weighs on all methods alike.
    """
    with torch.no_grad():
        labels = model(x).argmax(1)
    names = list(methods)
    adversarial = {name: [] for name in names}
    seconds = dict.fromkeys(names, 0.0)
    for index, chunk in enumerate(torch.arange(len(x)).chunk(rounds)):
        images, chunk_labels = x[chunk], labels[chunk]
        for name in names[index % len(names):] + names[: index % len(names)]:
            adv, spent = timed(lambda fn=methods[name], xx=images, yy=chunk_labels: fn(model, xx, yy))
            adversarial[name].append(adv)
            seconds[name] += spent
    rows = []
    for name in names:
        adv = torch.cat(adversarial[name])
        with torch.no_grad():
            fooled = (model(adv).argmax(1) != labels).float().mean().item()
        rho = (l2_norms(adv - x) / l2_norms(x)).mean().item()
        rows.append({"method": name, "images": len(x), "seconds": round(seconds[name], 2),
                     "images_per_s": len(x) / seconds[name], "fooled": fooled, "rho2": rho})
    return rows


def backward_modes(model, x, repeats: int = 3) -> dict[str, float]:
    """Seconds for one step's 9 candidate gradients: one vectorised backward vs a loop of backward passes."""
    from ddzoo.attacks.deepfool import candidate_gradients

    with torch.no_grad():
        candidates = model(x).topk(CANDIDATES, 1).indices
    timings = {}
    for vectorized in (True, False):
        best = float("inf")
        for _ in range(repeats):
            point = x.clone().requires_grad_(True)
            start = time.perf_counter()
            chosen = model(point).gather(1, candidates)
            candidate_gradients(chosen[:, 1:] - chosen[:, :1], point, vectorized=vectorized)
            best = min(best, time.perf_counter() - start)
        timings["vectorized" if vectorized else "loop"] = best
    return timings


def checkpoint(path: str | None, arch: str, dataset: str, recipe: ReferenceRecipe) -> Path:
    if path:
        return Path(path)
    out = RUNS / f"{arch}-{dataset}-ref"
    if not (out / "config.json").is_file():
        print(f"training {out}: zoo train --model {arch} --dataset {dataset} --epochs {recipe.epochs} "
              f"--lr {recipe.lr} --out {out}", flush=True)
        train_reference(arch, dataset, out, recipe)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--lenet")
    parser.add_argument("--resnet")
    parser.add_argument("--skip-torchattacks", action="store_true")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved chunks of images (see measure)")
    parser.add_argument("--models", nargs="+", choices=["lenet", "resnet20"], default=["lenet", "resnet20"])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (scripts/device_check.sh)")
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    device = torch.device(args.device)
    screen = SCREEN if bf16_is_fast(device) else 0.0  # what zoo eval / zoo verify use here
    cases = [
        ("lenet", "mnist", lambda: checkpoint(args.lenet, "lenet", "mnist", ReferenceRecipe(epochs=2))),
        ("resnet20", "cifar10",
         lambda: checkpoint(args.resnet, "resnet20", "cifar10", ReferenceRecipe(epochs=3, lr=0.1))),
    ]
    report = []
    for arch, dataset, make_checkpoint in cases:
        if arch not in args.models:
            continue
        ckpt = make_checkpoint()
        model, config = load_checkpoint(ckpt)
        stock, model = folded_copy(model).to(device), attack_copy(model).to(device)
        x = load_split(dataset, "test").tensors(limit=args.images)[0].to(device)
        methods = {"ddzoo (box-constrained)": lambda m, xx, _: ours_batched(m, xx, (0.0, 1.0), screen),
                   "ddzoo (box, float32 only)": lambda m, xx, _: ours_batched(m, xx, (0.0, 1.0), 0.0),
                   "ddzoo (unconstrained)": lambda m, xx, _: ours_batched(m, xx, None, screen),
                   "foolbox 3.3.4": foolbox_attack,
                   "foolbox 3.3.4 (stock model)": lambda _, xx, yy, s=stock: foolbox_attack(s, xx, yy)}
        if not args.skip_torchattacks:
            methods["torchattacks 3.5.1"] = torchattacks_attack
            methods["torchattacks 3.5.1 (stock model)"] = (
                lambda _, xx, yy, s=stock: torchattacks_attack(s, xx, yy))
        rows = measure(methods, model, x, args.rounds)
        modes = backward_modes(model, x[:200])
        print(f"one step, 200 images, 9 candidate gradients: vectorised backward {modes['vectorized']:.3f} s, "
              f"loop {modes['loop']:.3f} s")
        base = rows[0]["images_per_s"]
        print(f"\n{arch} on {dataset} ({len(x)} test images, test accuracy {config['metrics']['test_accuracy']:.4f}, "
              f"torch {torch.__version__}, {device}, {torch.get_num_threads()} threads)")
        print(f"{'method':28s} {'img/s':>9s} {'fooled':>7s} {'rho2':>7s} {'ddzoo(box) x':>13s}")
        for row in rows:
            row["ddzoo_box_speedup"] = base / row["images_per_s"]
            print(f"{row['method']:28s} {row['images_per_s']:9.1f} {row['fooled']:7.3f} {row['rho2']:7.4f} "
                  f"{row['ddzoo_box_speedup']:13.1f}")
        report.append({"arch": arch, "dataset": dataset, "checkpoint": str(ckpt), "device": str(device),
                       "screen": screen, "backward_seconds": modes,
                       "test_accuracy": config["metrics"]["test_accuracy"], "rows": rows})
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
