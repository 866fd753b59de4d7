"""Editing a cell's source by what its ``ast`` finds: the plumbing the recipe repairs share.

A repair parses the cell (IPython magic / shell lines blanked, so line numbers stay those of the
source), finds nodes, turns each into a character span of the *original* source and replaces it:
an edit is ``(start, end, replacement)``. ``ast`` columns are UTF-8 byte offsets; :func:`span`
converts them, so a line with non-ASCII text before the node is edited in the right place.
"""

from __future__ import annotations

import ast
import re
from typing import Callable

from .base import Repair

Edit = tuple[int, int, str]  # (start offset, end offset, replacement) in the cell's source


def parse(source: str, *, magics_as_pass: bool = False) -> ast.Module | None:
    """The cell's AST, or None where it does not parse, with IPython magic / shell lines (``!``, ``%``)
    blanked: by default to comments of the same length (every offset unchanged, the lines gone from the
    tree); with ``magics_as_pass`` to ``pass`` statements (line numbers unchanged, a block whose only
    statement is a shell line still parses, the line a ``Pass`` in the tree)."""
    if magics_as_pass:
        lines = [re.sub(r"^([ \t]*)[!%].*$", r"\1pass", line) for line in source.split("\n")]
    else:
        lines = [re.sub(r"^(\s*)[!%]", r"\1#", line) for line in source.split("\n")]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


def line_starts(source: str) -> list[int]:
    """Character offset of the start of each line (line ``n``, 1-based, starts at ``starts[n - 1]``)."""
    starts, total = [], 0
    for line in source.split("\n"):
        starts.append(total)
        total += len(line) + 1
    return starts


def offset(source: str, starts: list[int], lineno: int, col: int) -> int:
    """(1-based line, UTF-8 byte column, as ``ast`` gives them) -> character offset in ``source``."""
    line = source.split("\n")[lineno - 1]
    return starts[lineno - 1] + len(line.encode("utf-8")[:col].decode("utf-8", errors="ignore"))


def span(source: str, node: ast.AST) -> tuple[int, int]:
    """``node``'s (start, end) character offsets in ``source``."""
    starts = line_starts(source)
    return (offset(source, starts, node.lineno, node.col_offset),
            offset(source, starts, node.end_lineno, node.end_col_offset))


def segment(source: str, node: ast.AST) -> str:
    """The source text of ``node``."""
    start, end = span(source, node)
    return source[start:end]


def apply_edits(source: str, edits: list[Edit]) -> str:
    """``source`` with each (start, end, replacement) made, last first so earlier offsets hold; an edit
    listed twice is made once."""
    for start, end, text in sorted(set(edits), reverse=True):
        source = source[:start] + text + source[end:]
    return source


def call_name(node: ast.AST) -> str:
    """The called name of a call (``f`` of ``f(...)``, ``m`` of ``a.b.m(...)``); "" for anything else."""
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Attribute):
            return node.func.attr
        if isinstance(node.func, ast.Name):
            return node.func.id
    return ""


def calls(tree: ast.AST, *names: str) -> list[ast.Call]:
    """Every call in ``tree`` whose :func:`call_name` is one of ``names``."""
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and call_name(n) in names]


def edit_repair(name: str, detect: str, finder: Callable[..., list[Edit]], reason: str, *,
                sees_notebook: bool = False, describe: Callable[[str, str], str] | None = None,
                magics_as_pass: bool = False) -> Repair:
    """A repair whose edits ``finder(source, tree)`` computes on the cell :func:`parse` gives
    (``finder(source, tree, notebook_code)`` with ``sees_notebook``); it applies only where it finds one."""

    def edits(source: str, code: str = "") -> list[Edit]:
        tree = parse(source, magics_as_pass=magics_as_pass)
        if tree is None:
            return []
        return finder(source, tree, code) if sees_notebook else finder(source, tree)

    if sees_notebook:
        def fix(source: str, code: str = "") -> str:
            return apply_edits(source, edits(source, code))
    else:
        def fix(source: str) -> str:
            return apply_edits(source, edits(source))

    return Repair(
        name=name,
        detect=detect,
        fix=fix,
        fix_sees_notebook=sees_notebook,
        needs=lambda source, code: bool(edits(source, code)),
        reason=reason,
        describe=describe,
    )
