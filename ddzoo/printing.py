"""Tables on the terminal (rich), shared by the ``zoo`` command and the demo."""

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
