"""The picture of docs/results/across-datasets.md's stronger attacks: accuracy against the l2 budget, reference and Deep
Defense together, one panel per dataset, from `zoo eval --attacks ... --autoattack --json` files.

    python scripts/l2_budget_plot.py docs/figures/l2-budget.png runs/final/*.strong.json runs/cifar/*.eval.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ddzoo.verification.plot import plot_l2_budget_pairs

if __name__ == "__main__":
    out, *paths = sys.argv[1:]
    print(plot_l2_budget_pairs([json.loads(Path(p).read_text()) for p in paths], Path(out)))
