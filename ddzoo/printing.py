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


def markdown_table(rows: list[dict]) -> str:
    """``rows`` (dicts with the same keys, the first one's keys the header) as a markdown table."""
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    return "\n".join([*lines, *("| " + " | ".join(str(v) for v in row.values()) + " |" for row in rows)])
