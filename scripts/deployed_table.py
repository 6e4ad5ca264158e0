"""Print the markdown table of docs/results/ for packages as deployed: one row per artifact of each package, the
cells as the cards write them (ddzoo.verification.report.table_row), fewer columns.

    python scripts/deployed_table.py ddzoo/hub/lenet-fashion-mnist-{ref,dd,at,parseval}/main
"""

from __future__ import annotations

import sys
from pathlib import Path

from ddzoo.package import read_config, read_verification
from ddzoo.records import parse_records
from ddzoo.verification.report import table_row

COLUMNS = ("accuracy", "Δ accuracy vs checkpoint", "top-1 agreement", "ρ₂ 50 it", "ρ₂ ratio",
           "FGS / BIM at ε_ref", "Square acc. at ε_ref", "gate")


def main(packages: list[str]) -> None:
    print("| package | artifact | " + " | ".join(COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for folder in map(Path, packages):
        name = read_config(folder).get("name") or folder.parent.name
        for record in parse_records(read_verification(folder)).values():
            cells = table_row(record)
            print(f"| {name} | `{record.artifact}` | " + " | ".join(cells[c] for c in COLUMNS) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
