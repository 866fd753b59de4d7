"""Read, check and write Jupyter notebooks for the patcher (nbformat, no execution).

* :func:`read_notebook` turns a path into an nbformat 4.5 ``NotebookNode`` or raises
  :class:`~adapters.errors.NotebookError` with one line naming the file and what is wrong
  (not JSON, truncated, nbformat 3, no cells, ...). 4.0/4.4 notebooks are upgraded to 4.5 and given
  cell ids derived from each cell's content and position, so the same input always gets the same ids.
* :func:`dumps_notebook` is the one serialisation (sorted keys, indent 1, trailing newline):
  the same notebook always gives the same bytes.
* :func:`write_atomic` writes through a temp file in the target folder and ``os.replace``.
* :func:`code_problems` lists code cells that do not parse once ``!``/``%`` lines are blanked.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

import nbformat

from .errors import NotebookError

TARGET_MINOR = 5
_ID_RE = re.compile(r"^[a-zA-Z0-9-_]{1,64}$")


def _load_json(path: Path) -> dict:
    """Bytes on disk -> the notebook's JSON object (a dict), or one clear error."""
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise NotebookError(f"{path}: is a directory, not a notebook") from None
    except FileNotFoundError:
        raise NotebookError(f"{path}: no such file") from None
    except OSError as exc:
        raise NotebookError(f"{path}: cannot read ({exc.strerror})") from None
    if not raw.strip():
        raise NotebookError(f"{path}: empty file, not a notebook")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotebookError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # A document that stops inside a value or container is a cut-off download, not a typo.
        if exc.pos >= len(text.rstrip()) - 1 and text.lstrip().startswith("{"):
            raise NotebookError(f"{path}: truncated JSON (ends at line {exc.lineno}); the download is incomplete") from None
        raise NotebookError(f"{path}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise NotebookError(f"{path}: JSON nested too deeply to be a notebook") from None
    if not isinstance(data, dict):
        raise NotebookError(f"{path}: JSON top level is {type(data).__name__}, not a notebook object")
    return data


def _check_shape(path: Path, data: dict) -> None:
    """Reject what nbformat would reject, with messages a person can act on."""
    major = data.get("nbformat")
    if major is None:
        raise NotebookError(f"{path}: no 'nbformat' field; not a Jupyter notebook")
    if not isinstance(major, int) or isinstance(major, bool):
        raise NotebookError(f"{path}: 'nbformat' is {major!r}, not an integer")
    if major < 4:
        raise NotebookError(f"{path}: nbformat {major} is not supported; open and save it in Jupyter to upgrade to 4")
    if major > 4:
        raise NotebookError(f"{path}: nbformat {major} is newer than this kit understands (4)")
    minor = data.get("nbformat_minor", 0)
    if not isinstance(minor, int) or isinstance(minor, bool) or minor < 0:
        raise NotebookError(f"{path}: 'nbformat_minor' is {minor!r}, not a non-negative integer")
    cells = data.get("cells")
    if cells is None:
        raise NotebookError(f"{path}: no 'cells' list")
    if not isinstance(cells, list):
        raise NotebookError(f"{path}: 'cells' is {type(cells).__name__}, not a list")
    if not cells:
        raise NotebookError(f"{path}: the notebook has no cells")
    if not isinstance(data.get("metadata", {}), dict):
        raise NotebookError(f"{path}: notebook 'metadata' is not an object")
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict):
            raise NotebookError(f"{path}: cell {index} is not an object")
        kind = cell.get("cell_type")
        if kind not in ("code", "markdown", "raw"):
            raise NotebookError(f"{path}: cell {index} has cell_type {kind!r}")
        source = cell.get("source", "")
        if isinstance(source, list):
            if not all(isinstance(line, str) for line in source):
                raise NotebookError(f"{path}: cell {index} source list holds non-strings")
        elif not isinstance(source, str):
            raise NotebookError(f"{path}: cell {index} source is {type(source).__name__}, not text")
        if "\x00" in "".join(source):
            raise NotebookError(f"{path}: cell {index} source contains a NUL byte")
        if not isinstance(cell.get("metadata", {}), dict):
            raise NotebookError(f"{path}: cell {index} metadata is not an object")
        if kind == "code" and not isinstance(cell.get("outputs", []), list):
            raise NotebookError(f"{path}: cell {index} outputs is not a list")


def derived_cell_id(position: int, cell_type: str, source: str) -> str:
    """A stable 4.5 cell id from position and content: ``(3, "code", "x = 1")`` -> 12 hex chars."""
    digest = hashlib.sha1(f"{position}\x1f{cell_type}\x1f{source}".encode("utf-8")).hexdigest()
    return digest[:12]


def ensure_cell_ids(nb) -> None:
    """Give every cell a unique valid id, keeping valid existing ones (in place).

    Missing, malformed or duplicate ids are replaced by :func:`derived_cell_id`, so 4.0/4.4
    inputs get the same ids on every run.
    """
    seen: set[str] = set()
    for position, cell in enumerate(nb.cells):
        current = cell.get("id")
        if isinstance(current, str) and _ID_RE.match(current) and current not in seen:
            seen.add(current)
            continue
        candidate = derived_cell_id(position, cell.cell_type, cell.source)
        suffix = 1
        while candidate in seen:
            candidate = f"{derived_cell_id(position, cell.cell_type, cell.source)}-{suffix}"
            suffix += 1
        cell["id"] = candidate
        seen.add(candidate)


def read_notebook(path: str | os.PathLike) -> nbformat.NotebookNode:
    """Path -> validated nbformat 4.5 notebook (sources joined to strings, ids present)."""
    path = Path(path)
    data = _load_json(path)
    _check_shape(path, data)
    data = copy.deepcopy(data)
    for cell in data["cells"]:
        cell.setdefault("metadata", {})
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
        cell.setdefault("source", "")
        if cell["cell_type"] == "code":
            cell.setdefault("outputs", [])
            cell.setdefault("execution_count", None)
    data.setdefault("metadata", {})
    try:
        nb = nbformat.from_dict(data)
        if data.get("nbformat_minor", 0) < TARGET_MINOR:
            # Ids are invalid below 4.5: drop any (e.g. a stray one), upgrade, then derive ours.
            for cell in nb.cells:
                cell.pop("id", None)
        nb.nbformat_minor = max(nb.nbformat_minor, TARGET_MINOR)
        ensure_cell_ids(nb)
        _validate(nb, path)
    except NotebookError:
        raise
    except Exception as exc:  # nbformat raises a zoo of exception types on odd input
        raise NotebookError(f"{path}: not a valid notebook ({type(exc).__name__}: {_first_line(exc)})") from None
    return nb


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else "no detail"


def _validate(nb, path: Path | str) -> None:
    try:
        nbformat.validate(nb, version=4)
    except nbformat.ValidationError as exc:
        raise NotebookError(f"{path}: fails nbformat 4 validation ({_first_line(exc)})") from None


def validate_notebook(nb, label: str = "output") -> None:
    """Raise :class:`NotebookError` unless ``nb`` is valid nbformat 4.5 with unique ids."""
    if nb.nbformat != 4 or nb.nbformat_minor < TARGET_MINOR:
        raise NotebookError(f"{label}: nbformat {nb.nbformat}.{nb.nbformat_minor}, expected 4.{TARGET_MINOR}")
    ids = [cell.get("id") for cell in nb.cells]
    if len(set(ids)) != len(ids) or not all(isinstance(i, str) and _ID_RE.match(i) for i in ids):
        raise NotebookError(f"{label}: cell ids missing, malformed or duplicated")
    _validate(nb, label)


def blank_magics(source: str) -> str:
    """Replace IPython ``!cmd``/``%magic`` lines (and ``%%cell`` magics' first line) with ``pass``."""
    lines = []
    for line in source.split("\n"):
        stripped = line.lstrip()
        if stripped.startswith(("!", "%")):
            indent = line[: len(line) - len(stripped)]
            lines.append(f"{indent}pass")
        else:
            lines.append(line)
    return "\n".join(lines)


def code_problems(nb) -> list[str]:
    """``["cell 4: SyntaxError: ... (line 2)"]`` for code cells that do not parse."""
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.source.lstrip().startswith("%%"):
            continue  # a cell magic (%%writefile, %%bash) holds non-Python by design
        try:
            ast.parse(blank_magics(cell.source))
        except SyntaxError as exc:
            problems.append(f"cell {index}: SyntaxError: {exc.msg} (line {exc.lineno})")
    return problems


def dumps_notebook(nb) -> str:
    """The one byte form of a notebook: nbformat JSON, keys sorted, indent 1, trailing newline."""
    data = json.loads(nbformat.writes(nb, version=4))
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same folder and ``os.replace``."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise NotebookError(f"{path}: cannot write in {folder} ({exc.strerror})") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
        # mkstemp makes 0600 files; a notebook should get the usual umask-derived mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)
        os.replace(temp, path)
    except OSError as exc:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise NotebookError(f"{path}: cannot write ({exc.strerror})") from None
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
