"""Tables on the terminal (rich), shared by the ``zoo`` command and the demo, and in markdown (cards, docs)."""

from __future__ import annotations


def print_table(rows: list[dict], title: str) -> None:
    """Print ``rows`` (dicts with the same keys) as a table; full width when not a terminal (logs, pipes)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for key in rows[0]:
        table.add_column(key)
    for row in rows:
        table.add_row(*(str(value) for value in row.values()))
    console = Console()
    if not console.is_terminal:  # logs and pipes: full rows, not 80 columns
        console = Console(width=240)
    console.print(table)


def markdown_table(rows: list[dict], header: list[str] | None = None) -> str:
    """``rows`` as a markdown table: dicts with the same keys, the first one's keys the header; or, with
    ``header`` (which may repeat a name), sequences of cells."""
    header = list(rows[0]) if header is None else header
    cells = (row.values() if isinstance(row, dict) else row for row in rows)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(str(v) for v in row) + " |" for row in cells)])
