"""Reading the Markdown tables the benchmarks write, for the tests that check their cells."""

from __future__ import annotations


def table_rows(text: str, first_cell: str) -> dict[str, list[str]]:
    """The Markdown table whose header starts with ``first_cell`` -> ``{row label: the other cells}``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_cell} |"))
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("| "):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows
