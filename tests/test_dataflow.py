"""The name contract: what a cell defines and reads (adapters/dataflow.py) and how the patcher enforces it.

Small fixtures, one per failure seen on real notebooks (issue 10): a kept display cell reading data a
replaced cell loaded (removed, with the reason); a kept cell whose result later cells use, reading a name
only a removed cell defined (refused); a repair making a kept cell read a kit name nothing defines
(refused); names the kit provides to kept cells (reported). The original real notebooks must be
consistent except the Kaggle notebook's own missing GRPO imports.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from adapters.dataflow import FlowCell, cell_names, check_contract, removable, undefined_reads
from adapters.errors import NotebookError
from adapters.notebook_io import read_notebook
from adapters.notebook_runs import NO_REAL_NOTEBOOKS, real_notebooks
from adapters.patcher import adapt, format_report

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "notebooks" / "trl_sft.ipynb"


# ------------------------------------------------------------------------------------ cell_names


@pytest.mark.parametrize(
    "source, defines, reads, deferred",
    [
        ("x = y + 1", {"x"}, ("y",), set()),
        ("x = 1\nprint(x)", {"x"}, (), set()),
        ("import numpy as np\nfrom a.b import c as d", {"np", "d"}, (), set()),
        ("def f(a, b=dflt):\n    return a + g(b) + CONST", {"f"}, ("dflt",), {"g", "CONST"}),
        ("def f():\n    local = 1\n    return local", {"f"}, (), set()),
        ("def f():\n    global G\n    G = 1", {"f", "G"}, (), set()),
        ("rows = [r['q'] for r in dataset if r]", {"rows"}, ("dataset",), set()),
        ("{k: v for k, v in table.items()}", set(), ("table",), set()),
        ("fn = lambda row: row[key]", {"fn"}, (), {"key"}),
        ("for i, (a, b) in enumerate(pairs):\n    total += a", {"i", "a", "b", "total"}, ("pairs", "total"), set()),
        ("with open(p) as fh:\n    data = fh.read()", {"fh", "data"}, ("p",), set()),
        ("try:\n    import x\nexcept ImportError as err:\n    x = None", {"x", "err"}, (), set()),
        ("df['col'] = values", set(), ("values", "df"), set()),
        ("class A(Base):\n    n = size\n    def m(self):\n        return helper()", {"A"}, ("Base",), {"size", "helper"}),
        ("!pip install x\n%time y = z", set(), (), set()),
        ("%%bash\necho $HOME", set(), (), set()),
        ("%%capture\nimport os\nv = os.environ[KEY]", {"os", "v"}, ("KEY",), set()),
        ("if (n := len(items)) > 3:\n    print(n)", {"n"}, ("items",), set()),
        ("this is not python(", set(), (), set()),
    ],
)
def test_cell_names(source, defines, reads, deferred):
    names = cell_names(source)
    assert set(names.defines) == defines
    assert names.reads == reads
    assert set(names.deferred) == deferred


def test_builtins_and_ipython_names_are_not_reads():
    assert cell_names("print(len(range(3)))\ndisplay(get_ipython())").reads == ()


def test_undefined_reads_in_order():
    assert undefined_reads(["a = 1", "b = a + c", "from m import *", "d = e"]) == [set(), {"c"}, set(), set()]


# ----------------------------------------------------------------------------- check_contract


def _flow(*cells):
    return [FlowCell(source, origin, label) for origin, label, source in cells]


def test_lost_provided_and_inherited():
    flow = _flow(("kit", "dipg_data", "dataset = load()"), ("base", "show", "print(dataset, raw, mystery)"))
    flow[1] = FlowCell(flow[1].source, "base", "show", frozenset({"mystery"}))
    contract = check_contract(flow, base_defined={"dataset", "raw"})
    assert contract.provided == {"dataset": ("dipg_data", 1)}
    assert contract.lost == [(1, "raw", "read")]
    assert contract.inherited == [(1, "mystery")]


def test_function_bodies_need_their_globals_somewhere():
    flow = _flow(("base", "rewards", "def reward(c):\n    return match_format.search(c)"))
    assert check_contract(flow, base_defined={"match_format", "reward"}).lost == [(0, "match_format", "deferred")]
    flow += _flow(("kit", "dipg_tags", "match_format = compile_it()"))
    assert check_contract(flow, base_defined={"match_format", "reward"}).lost == []


def test_removable_only_when_nothing_later_uses_its_names():
    flow = _flow(("base", "a", "n = len(raw)"), ("base", "b", "print(n)"), ("base", "c", "print(raw[0])"))
    assert not removable(flow, 0)
    assert removable(flow, 2)
    flow = _flow(("base", "f", "def f():\n    return n"), ("base", "a", "n = len(raw)"))
    assert not removable(flow, 1)  # f reads n when it runs


# ------------------------------------------------------------------------- patcher enforcement


def _fixture_with(*extra: str, loader_tail: str = "\nraw_rows = dataset.to_list()"):
    """The TRL SFT fixture whose (replaced) loader cell also defines raw_rows, plus ``extra`` cells."""
    nb = read_notebook(FIXTURE)
    loader = next(c for c in nb.cells if "load_dataset(" in c.source and c.cell_type == "code")
    loader.source += loader_tail
    nb.cells.extend(nbformat.v4.new_code_cell(src) for src in extra)
    return nb


def test_display_cell_reading_replaced_data_is_removed_with_reason():
    result = adapt(_fixture_with("print(raw_rows[0])"))
    assert not any("raw_rows" in c.source for c in result.nb.cells if c.cell_type == "code")
    row = next(r for r in result.report if r.cell.startswith("print(raw_rows[0])"))
    assert row.status == "removed" and "raw_rows" in row.reason and "nothing later uses" in row.reason


def test_kept_cell_whose_result_is_used_later_is_refused():
    with pytest.raises(NotebookError, match=r"name contract: kept cell 'n_raw = len\(raw_rows\)' reads raw_rows"):
        adapt(_fixture_with("n_raw = len(raw_rows)", "print(n_raw)"))


def test_repair_reading_an_undefined_kit_name_is_refused(monkeypatch):
    from adapters.recipes import common
    from adapters.recipes.base import Repair

    bad = Repair(name="bad", detect=r"^print\(1\)", fix=lambda s: "print(KIT_NAME_NOBODY_DEFINES)", reason="test")
    monkeypatch.setattr(common, "COMMON_REPAIRS", common.COMMON_REPAIRS + (bad,))
    monkeypatch.setattr("adapters.patcher.COMMON_REPAIRS", common.COMMON_REPAIRS)
    with pytest.raises(NotebookError, match="repaired cell .* reads KIT_NAME_NOBODY_DEFINES"):
        adapt(_fixture_with("print(1)", loader_tail=""))


def test_report_lists_names_the_kit_provides():
    result = adapt(_fixture_with("print(len(dataset))", loader_tail=""))
    assert "dataset" in result.provided
    assert any(line.startswith("provides: dataset (kit cell ") for line in format_report(result).splitlines())


# -------------------------------------------------------------------------- the real originals


@pytest.mark.skipif(not real_notebooks(), reason=NO_REAL_NOTEBOOKS)
def test_real_originals_are_consistent_except_kaggle_missing_imports():
    found = {}
    for path in real_notebooks():
        nb = json.loads(path.read_text(encoding="utf-8"))
        sources = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
        missing = set().union(*undefined_reads(sources))
        every = set().union(*(cell_names(s).defines for s in sources))
        missing |= set().union(*(cell_names(s).deferred for s in sources)) - every
        if missing:
            found[path.stem] = missing
    grpo_imports = {"GRPOConfig", "GRPOLearner", "base_rollout", "metrics_logger", "rl_cluster_lib"}
    assert all(names <= grpo_imports for names in found.values()), found
    assert any("kaggle" in name for name in found), "the Kaggle notebook's missing imports were not seen"
