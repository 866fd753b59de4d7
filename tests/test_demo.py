"""scripts/demo.py (`make demo`): its pure parts — which test rows it scores, the table it prints. No training."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def demo():
    spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(types):
    return [{"metadata": {"type": kind}} for kind in types]


def test_select_rows_takes_the_first_rows_of_each_of_the_four_types(demo):
    types = ["refusal", "haystack", "anti_knowledge", "refusal", "reasoning", "reasoning", "reasoning",
             "haystack", "anti_knowledge", "refusal", "haystack", "other", "anti_knowledge", "reasoning"]
    picked = demo.select_rows(_rows(types), per_type=2)
    assert picked == sorted(picked) and len(picked) == 8
    assert {types[i] for i in picked} == set(demo.ROW_TYPES)
    assert picked == [0, 1, 2, 3, 4, 5, 7, 8]
    # Deterministic: the same split gives the same rows.
    assert demo.select_rows(_rows(types), per_type=2) == picked


def test_select_rows_refuses_a_split_short_of_a_type(demo):
    with pytest.raises(ValueError, match="haystack"):
        demo.select_rows(_rows(["reasoning", "refusal", "anti_knowledge"] * 3), per_type=1)


def test_select_rows_on_the_fixture_dataset_covers_every_type(demo):
    from adapters.dataset import load_splits

    test = list(load_splits(str(ROOT / "tests/fixtures/eval/dataset"))["test"])
    present = {row["metadata"]["type"] for row in test}
    if not set(demo.ROW_TYPES) <= present:
        pytest.fail(f"fixture dataset lacks a row type: {sorted(present)}")
    picked = demo.select_rows(test, per_type=1)
    assert sorted(test[i]["metadata"]["type"] for i in picked) == sorted(demo.ROW_TYPES)


def test_table_from_two_metrics_files(demo, tmp_path):
    golden = json.loads((ROOT / "tests/golden/eval/metrics.json").read_text())
    after = copy.deepcopy(golden)
    after["overall"]["strict_format_rate"] = 1.0
    after["overall"]["gym"]["mean_reward"] = 23.4
    before_path, after_path = tmp_path / "before.json", tmp_path / "after.json"
    before_path.write_text(json.dumps(golden))
    after_path.write_text(json.dumps(after))

    table = demo.render_table(json.loads(before_path.read_text()), json.loads(after_path.read_text()))
    lines = table.splitlines()
    assert lines[0] == "| metric | before (base) | after (masked SFT) | gold replies |"
    labels = [line.split(" | ")[0].lstrip("| ") for line in lines[2:] if line.startswith("| ")][:len(demo.TABLE_ROWS)]
    assert tuple(labels) == demo.TABLE_ROWS
    strict = next(line for line in lines if line.startswith("| strict format |"))
    assert strict.endswith(f"| {100 * golden['overall']['strict_format_rate']:.1f} % | 100.0 % |  |")
    reward = next(line for line in lines if line.startswith("| gym mean reward |"))
    assert reward.endswith(f"| 23.40 | {golden['gold']['overall']['mean_reward']:.2f} |")
    # Strict format by row type, all four types; no failure-kind table.
    for kind in demo.ROW_TYPES:
        assert any(line.startswith(f"| {kind} |") for line in lines)
    assert "First strict failure" not in table
