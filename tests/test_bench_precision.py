"""benchmarks/bench_precision.py: both precisions timed on the same rows, ratios computed from the seconds shown."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from markdown_tables import table_rows

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_precision", ROOT / "benchmarks" / "bench_precision.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.e2e
def test_the_tables_time_both_precisions_and_their_ratios_follow_the_seconds(bench, tiny_model_dir, tmp_path):
    out = tmp_path / "precision.md"
    assert bench.main(["--model", str(tiny_model_dir), "--train-rows", "3", "--gen-rows", "2",
                       "--max-new-tokens", "3", "--batch-size", "2", "--markdown", str(out)]) == 0
    text = out.read_text()
    training = table_rows(text, "training")
    assert list(training) == ["float32", "bf16 autocast (float32 weights and AdamW)"]
    assert float(training["float32"][3]) == 1.0
    generation = table_rows(text, "generation")
    assert list(generation) == ["float32 weights", "bfloat16 weights"]
    assert all(int(cells[1]) > 0 for cells in generation.values())  # new tokens were generated
    assert "Training: 3 v2 rows" in text and "identical token for token: " in text and " of 2." in text


def test_too_few_training_rows_is_exit_2(bench, capsys):
    assert bench.main(["--train-rows", "1"]) == 2
    assert capsys.readouterr().err.startswith("error: --train-rows must be at least 2")


def test_ratios_and_loss_differences_come_from_the_timings(bench):
    """Known timings in, the table's figures out: the first row of each run is not counted."""
    from argparse import Namespace

    train = {"fp32": {"seconds": [9.0, 2.0, 4.0], "losses": [2.0, 1.0, 0.5], "tokens": [100, 300, 500]},
             "bf16": {"seconds": [7.0, 1.0, 1.0], "losses": [2.0, 1.01, 0.49], "tokens": [100, 300, 500]}}
    gen = {"float32": {"seconds": 10.0, "replies": ["a", "b"], "new_tokens": 40},
           "bfloat16": {"seconds": 4.0, "replies": ["a", "c"], "new_tokens": 40}}
    env = {"machine": "m", "python": "3", "torch": "t", "transformers": "x"}
    args = Namespace(model="models/gemma-3-270m", threads=2, max_new_tokens=8, batch_size=2)
    text = bench.markdown(train, gen, args, env, "AMX bf16")
    training = table_rows(text, "training")
    assert training["float32"] == ["6.0", "133", "3.00", "1.00"]  # 800 tokens / 6 s
    assert training["bf16 autocast (float32 weights and AdamW)"] == ["2.0", "400", "1.00", "3.00"]
    assert "relative difference median 0.0100, max 0.0200" in text
    generation = table_rows(text, "generation")
    assert generation["float32 weights"] == ["10.0", "40", "4.0", "1.00"]
    assert generation["bfloat16 weights"] == ["4.0", "40", "10.0", "2.50"]
    assert "identical token for token: 1 of 2." in text
