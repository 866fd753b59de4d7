"""The cells the patcher inserts, and the one "DSA core" cell built from the kit's own modules.

Every inserted cell is a jupytext percent-format file next to this module (``parameters.py``,
``dipg_data.py``, ...): one ``# %%`` cell per file, plain Python that runs in a notebook's namespace
after the cells before it. Tests execute the same files against the kit, so what the notebook runs is
what the tests ran.

Notebooks must run without the kit installed, so :func:`build_core_source` inlines the kit's core
modules (``errors``, ``dsa_format``, ``chat``, and ``chat_template``/``dataset``/``masking``/``rewards``/``gym_scorer``
where present) into one cell: each module's source verbatim, in dependency order, with its relative
imports removed (``from .chat import X as Y`` becomes ``Y = X``). No logic is copied by hand.

:func:`render_cell` fills in what differs per base notebook: identifiers (``tokenizer`` -> the base's
tokenizer variable, renamed on NAME tokens only, never inside strings) and the right-hand side of
top-level ``NAME = value`` assignments (the parameters cell's ``MODEL_ID`` etc.).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

from ..errors import NotebookError

CELLS_DIR = Path(__file__).resolve().parent
KIT_DIR = CELLS_DIR.parent
# Candidate core modules, in a fixed order; the dependency sort below only moves a module later.
CORE_MODULES = ("errors", "dsa_format", "chat", "chat_template", "dataset", "masking", "gym_scorer", "rewards")
REQUIRED_CORE = ("errors", "dsa_format", "chat")
CORE_CELL = "dsa_core"
# The core cell's first line: a Colab form title, so Colab shows the cell collapsed to this line (its code
# behind "Show code"); Jupyter, papermill and jupytext read it as a comment.
CORE_TITLE = '# @title DSA core (inlined kit modules) {display-mode: "form"}'

_HEADER_RE = re.compile(r"^# %%(?P<rest>.*)$")


@dataclass(frozen=True)
class CellTemplate:
    """One cell file: ``name`` (file stem), ``cell_type``, ``source`` and jupytext ``tags``."""

    name: str
    cell_type: str
    source: str
    tags: tuple[str, ...] = ()


def cell_names() -> list[str]:
    """Sorted stems of the cell files in this folder (``["dipg_data", "parameters", ...]``)."""
    return sorted(p.stem for p in CELLS_DIR.glob("*.py") if not p.stem.startswith("_"))


def _parse_header(rest: str) -> tuple[str, tuple[str, ...]]:
    """``' [markdown]'`` -> ("markdown", ()); ``' tags=["parameters"]'`` -> ("code", ("parameters",))."""
    cell_type = "markdown" if "[markdown]" in rest else "code"
    tags: tuple[str, ...] = ()
    match = re.search(r"tags=(\[[^\]]*\])", rest)
    if match:
        tags = tuple(ast.literal_eval(match.group(1)))
    return cell_type, tags


def load_cell(name: str) -> CellTemplate:
    """Read ``adapters/cells/NAME.py`` (one percent-format cell) into a :class:`CellTemplate`."""
    if name == CORE_CELL:
        return CellTemplate(CORE_CELL, "code", build_core_source())
    # Names come from notebook metadata too: only the files in this folder are cells (no paths).
    if name not in cell_names():
        raise NotebookError(f"unknown kit cell {name!r} (cells: {', '.join(cell_names())})")
    path = CELLS_DIR / f"{name}.py"
    lines = path.read_text(encoding="utf-8").split("\n")
    headers = [i for i, line in enumerate(lines) if _HEADER_RE.match(line)]
    if len(headers) != 1:
        raise NotebookError(f"adapters/cells/{name}.py must hold exactly one '# %%' cell, found {len(headers)}")
    cell_type, tags = _parse_header(_HEADER_RE.match(lines[headers[0]]).group("rest"))
    body = lines[headers[0] + 1 :]
    if cell_type == "markdown":
        body = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in body]
    source = "\n".join(body).strip("\n")
    return CellTemplate(name, cell_type, source, tags)


def rename_identifiers(source: str, mapping: dict[str, str]) -> str:
    """Rename NAME tokens (not strings, not comments, not attributes after ``.``) per ``mapping``."""
    mapping = {k: v for k, v in mapping.items() if k != v}
    if not mapping:
        return source
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    lines = source.split("\n")
    edits = []  # (row, col, old text, new text)
    previous = None
    names_re = re.compile(r"(?<![\w.])(" + "|".join(map(re.escape, sorted(mapping))) + r")\b")
    for token in tokens:
        if token.type == tokenize.NAME and token.string in mapping and not (
            previous is not None and previous.type == tokenize.OP and previous.string == "."
        ):
            edits.append((token.start[0], token.start[1], token.string, mapping[token.string]))
        elif token.type == tokenize.STRING and token.start[0] == token.end[0]:
            prefix = re.match(r"[A-Za-z]*", token.string).group(0).lower()
            if "f" in prefix:  # Python 3.11 tokenizes an f-string whole: rename inside its {fields}
                renamed = re.sub(r"\{[^{}]*\}", lambda m: names_re.sub(lambda n: mapping[n.group(1)], m.group(0)), token.string)
                if renamed != token.string:
                    edits.append((token.start[0], token.start[1], token.string, renamed))
        if token.type not in (tokenize.NL, tokenize.COMMENT):
            previous = token
    # Edit from the end so earlier offsets stay valid.
    for row, col, old, new in sorted(edits, reverse=True):
        line = lines[row - 1]
        lines[row - 1] = line[:col] + new + line[col + len(old) :]
    return "\n".join(lines)


def python_literal(value) -> str:
    """A value as Python source; strings in double quotes (``json.dumps`` is valid Python for them)."""
    import json

    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{python_literal(k)}: {python_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(python_literal(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    return repr(value)


def set_assignments(source: str, values: dict[str, object]) -> str:
    """Replace the value of top-level ``NAME = ...`` (single-line) assignments with ``repr(value)``."""
    if not values:
        return source
    tree = ast.parse(source)
    lines = source.split("\n")
    done = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in values:
                done.add(name)
                try:
                    current = ast.literal_eval(node.value)
                except ValueError:
                    current = object()
                if type(current) is type(values[name]) and current == values[name]:
                    continue  # keep the template's own spelling of an equal value
                if node.lineno != node.end_lineno:
                    raise NotebookError(f"cell assignment {name} spans lines; cannot set it")
                line = lines[node.lineno - 1]
                comment = ""
                tail = line[node.end_col_offset :]
                if tail.strip().startswith("#"):
                    comment = tail
                lines[node.lineno - 1] = f"{line[: node.col_offset]}{name} = {python_literal(values[name])}{comment}"
    missing = sorted(set(values) - done)
    if missing:
        raise NotebookError(f"cell has no top-level assignment for {', '.join(missing)}")
    return "\n".join(lines)


def render_cell(name: str, names: dict | None = None, values: dict | None = None) -> CellTemplate:
    """The template ``name`` with identifiers renamed (``names``) and assignments set (``values``)."""
    template = load_cell(name)
    source = template.source
    if template.cell_type == "markdown" and "DSA_TITLE" in source:
        # The kit header: DSA title, provenance line, and the Colab badge where the repository is known
        # (the paragraph is left out otherwise: never a placeholder).
        values = values or {}
        for key in ("DSA_TITLE", "DSA_PROVENANCE", "DSA_BADGE"):
            source = source.replace(key, str(values.get(f"_{key}") or ""))
        source = re.sub(r"\n{3,}", "\n\n", source).strip("\n")
    if template.cell_type == "code" and name != CORE_CELL:
        used = {k: v for k, v in (values or {}).items() if re.search(rf"^{re.escape(k)}\s*=", source, re.M)}
        source = set_assignments(source, used)
        source = rename_identifiers(source, names or {})
    return CellTemplate(template.name, template.cell_type, source, template.tags)


# ----------------------------------------------------------------------------------- DSA core cell


def _relative_imports(tree: ast.Module) -> list[ast.ImportFrom]:
    return [node for node in tree.body if isinstance(node, ast.ImportFrom) and node.level > 0]


def _top_level_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _module_order(sources: dict[str, str]) -> list[str]:
    """Modules in :data:`CORE_MODULES` order, each after the modules it imports relatively."""
    deps = {}
    for name, source in sources.items():
        tree = ast.parse(source)
        deps[name] = set()
        nested = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level > 0 and n not in tree.body]
        if nested:
            raise NotebookError(f"adapters/{name}.py: relative import inside a block (line {nested[0].lineno}); "
                                "the core cell inlines only top-level ones")
        for node in _relative_imports(tree):
            if node.level != 1 or not node.module:
                raise NotebookError(f"adapters/{name}.py: relative import form not inlinable (line {node.lineno})")
            target = node.module.split(".")[0]
            if target not in sources:
                raise NotebookError(f"adapters/{name}.py imports .{target}, which is not a core module")
            deps[name].add(target)
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise NotebookError(f"core modules import each other in a cycle through {name}")
        visiting.add(name)
        for dep in sorted(deps[name], key=CORE_MODULES.index):
            visit(dep)
        visiting.discard(name)
        order.append(name)

    for name in sorted(sources, key=CORE_MODULES.index):
        visit(name)
    return order


def _strip_module(name: str, source: str) -> tuple[str, list[str]]:
    """Module source -> (source without relative imports and ``__future__`` imports, alias lines)."""
    tree = ast.parse(source)
    lines = source.split("\n")
    drop: set[int] = set()
    aliases: list[str] = []
    for node in tree.body:
        is_future = isinstance(node, ast.ImportFrom) and node.module == "__future__"
        if isinstance(node, ast.ImportFrom) and (node.level > 0 or is_future):
            drop.update(range(node.lineno - 1, node.end_lineno))
            if not is_future:
                for alias in node.names:
                    if alias.name == "*":
                        continue
                    if alias.asname and alias.asname != alias.name:
                        aliases.append(f"{alias.asname} = {alias.name}")
    kept = [line for index, line in enumerate(lines) if index not in drop]
    return "\n".join(kept).strip("\n"), aliases


def core_module_paths() -> list[Path]:
    """The kit modules the core cell inlines (those of :data:`CORE_MODULES` that exist)."""
    paths = []
    for name in CORE_MODULES:
        path = KIT_DIR / f"{name}.py"
        if path.is_file():
            paths.append(path)
        elif name in REQUIRED_CORE:
            raise NotebookError(f"kit core module adapters/{name}.py is missing")
    return paths


def build_core_source() -> str:
    """One code cell holding the kit's core modules, inlined (see the module docstring)."""
    sources = {p.stem: p.read_text(encoding="utf-8") for p in core_module_paths()}
    order = _module_order(sources)
    seen: dict[str, str] = {}
    parts = [
        CORE_TITLE,
        "# DSA core: the kit's format, chat, masking and reward modules, inlined so this notebook",
        "# runs without the kit installed. Generated by scripts/adapt_dsa_notebook.py; edit the kit,",
        "# not this cell. Modules: " + ", ".join(order) + ".",
        "from __future__ import annotations",
    ]
    for name in order:
        body, aliases = _strip_module(name, sources[name])
        tree = ast.parse(body)
        defined = _top_level_names(tree)
        renames = {}
        for symbol in sorted(defined & set(seen)):
            if symbol.startswith("_"):
                renames[symbol] = f"_{name}{symbol}"
            elif symbol.isupper() or symbol == "__all__":
                continue  # shared constants (same value by construction); the later one wins
            else:
                raise NotebookError(
                    f"adapters/{name}.py and adapters/{seen[symbol]}.py both define {symbol}; "
                    "the core cell cannot inline both"
                )
        body = rename_identifiers(body, renames)
        for symbol in defined:
            seen.setdefault(symbol, name)
        parts.append(f"\n# ---- adapters/{name}.py " + "-" * max(0, 70 - len(name)))
        parts.append(body)
        parts.extend(aliases)
    source = "\n".join(parts) + "\n"
    ast.parse(source)  # fails loudly here rather than in the user's notebook
    return source.rstrip("\n")
