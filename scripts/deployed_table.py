"""Print the markdown table of docs/results/ for packages as deployed: one row per artifact of each package, the
cells as the cards write them (ddzoo.verification.table_row), fewer columns.

    python scripts/deployed_table.py ddzoo/hub/lenet-fashion-mnist-{ref,dd,at,parseval}/main
"""

from __future__ import annotations

import sys
from pathlib import Path

from ddzoo.package import read_verification
from ddzoo.printing import markdown_table
from ddzoo.records import parse_records
from ddzoo.verification import table_row

COLUMNS = ("accuracy", "Δ accuracy vs checkpoint", "top-1 agreement", "ρ₂ 50 it", "ρ₂ ratio",
           "FGS / BIM at ε_ref", "Square acc. at ε_ref", "gate")


def package_name(folder: Path) -> str:
    """A bundled or published package's folder is NAME/main; a built one is NAME."""
    return folder.parent.name if folder.name == "main" else folder.name


def main(packages: list[str]) -> None:
    rows = [{"package": package_name(folder), "artifact": f"`{record.artifact}`",
             **{column: row[column] for column in COLUMNS}}
            for folder in map(Path, packages) for record in parse_records(read_verification(folder)).values()
            for row in [table_row(record)]]
    print(markdown_table(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
