"""Property tests: whatever extra cells a base notebook carries, the patcher stays deterministic,
idempotent and leaves those cells alone; derived cell ids are always valid and unique."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.notebook_io import blank_magics, dumps_notebook, ensure_cell_ids, read_notebook
from adapters.patcher import GSM8K_PATTERNS, adapt

ROOT = Path(__file__).resolve().parents[1]
BASE = json.loads((ROOT / "tests" / "fixtures" / "notebooks" / "trl_sft.ipynb").read_text())

# Extra cells a user might have added: comments, prints of arbitrary text, markdown notes.
# Text that names GSM8K is excluded: the patcher refuses such output on purpose (a cell its recipe does not cover).
_text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=40).filter(
    lambda t: not any(re.search(pattern, repr(t)) or re.search(pattern, t) for pattern in GSM8K_PATTERNS)
)
_cell = st.one_of(
    _text.map(lambda t: ("code", "print(" + repr(t) + ")")),
    _text.map(lambda t: ("code", "# " + t.replace("\n", " "))),
    _text.map(lambda t: ("markdown", t or "note")),
)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(extra=st.lists(st.tuples(st.integers(min_value=0, max_value=12), _cell), max_size=4))
def test_extra_cells_are_kept_and_output_is_stable(tmp_path, extra):
    data = json.loads(json.dumps(BASE))
    for position, (kind, source) in extra:
        cell = {"cell_type": kind, "metadata": {}, "source": source}
        if kind == "code":
            cell.update(outputs=[], execution_count=None)
        data["cells"].insert(min(position, len(data["cells"])), cell)
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(data))
    first = dumps_notebook(adapt(read_notebook(path)).nb)
    assert dumps_notebook(adapt(read_notebook(path)).nb) == first
    again = adapt(nbformat.reads(first, as_version=4))
    assert dumps_notebook(again.nb) == first
    sources = [c.source for c in again.nb.cells]
    for _, (kind, source) in extra:
        if source.strip():
            assert source in sources


@given(st.lists(st.tuples(st.sampled_from(["code", "markdown", "raw"]), _text), min_size=1, max_size=12))
def test_derived_ids_are_valid_and_unique(cells):
    nb = nbformat.v4.new_notebook()
    for kind, source in cells:
        cell = {"code": nbformat.v4.new_code_cell, "markdown": nbformat.v4.new_markdown_cell,
                "raw": nbformat.v4.new_raw_cell}[kind](source)
        cell.pop("id", None)
        nb.cells.append(cell)
    ensure_cell_ids(nb)
    ids = [c.id for c in nb.cells]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", i) for i in ids)
    copy = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell in copy.cells:
        cell.pop("id")
    ensure_cell_ids(copy)
    assert [c.id for c in copy.cells] == ids  # same content and positions, same ids


@given(st.lists(st.one_of(_text.map(lambda t: "!" + t.replace("\n", " ")), st.just("x = 1"), st.just("%time f()"), st.just("if True:\n    !ls")), max_size=6))
def test_blank_magics_keeps_line_count_and_parses(lines):
    source = "\n".join(lines)
    blanked = blank_magics(source)
    assert blanked.count("\n") == source.count("\n")
    compile(blanked, "<cell>", "exec")
