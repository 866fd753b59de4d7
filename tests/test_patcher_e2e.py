"""End to end: an adapted TRL notebook runs under papermill on the tiny offline Gemma-3 and the offline
DIPG split (an SFT step on the kit's masked rows, generation with stop ids 106/1, the evaluation file).

Slow (a kernel, a model, two optimiser steps): marked ``e2e``. Needs ``make models data``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.notebook_io import dumps_notebook, read_notebook
from adapters.patcher import adapt

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "dipg"


@pytest.mark.e2e
def test_adapted_trl_notebook_runs(tmp_path, tiny_model_dir):
    papermill = pytest.importorskip("papermill")
    pytest.importorskip("med_safety_eval")
    if not (DATA / "train.jsonl").exists():
        pytest.skip(f"{DATA} is absent: run `make data`")
    source = tmp_path / "trl_sft_full.dsa.ipynb"
    source.write_text(dumps_notebook(adapt(read_notebook(ROOT / "tests/fixtures/notebooks/trl_sft_full.ipynb")).nb))
    out_dir = tmp_path / "run"
    executed = tmp_path / "executed.ipynb"
    papermill.execute_notebook(
        str(source), str(executed), kernel_name="python3", cwd=str(tmp_path), progress_bar=False,
        parameters={"MODEL_ID": str(tiny_model_dir), "DATASET_ID": str(DATA), "OUTPUT_DIR": str(out_dir),
                    # Short rows only: a 262k-vocabulary logit tensor per token is what costs time on CPU.
                    "MAX_STEPS": 1, "MAX_TRAIN_ROWS": 8, "MAX_SEQ_LENGTH": 384, "NUM_EVAL_ROWS": 2,
                    "MAX_NEW_TOKENS": 8},
    )
    nb = json.loads(executed.read_text())
    text = "".join(
        "".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"]
        if o.get("output_type") == "stream"
    )
    import re

    kept, dropped = map(int, re.search(r"masked (\d+) rows; dropped (\d+)", text).groups())
    assert kept + dropped == 8 and kept > 0  # rows the 384-token budget would cut are dropped, not cut
    assert "TrainOutput(global_step=1" in json.dumps(nb)
    assert "DIPG rows: train 8, test 100, evaluated 2" in text
    saved = json.loads((out_dir / "eval_after_SFT.json").read_text())
    summary = saved["summary"]
    assert summary["rows"] == 2 and len(saved["replies"]) == 2
    assert all(reply.startswith("<think>\n") for reply in saved["replies"])  # pre-fill put back
    for key in ("strict_format", "failure_kinds", "gym_mean_reward", "safe", "hallucination", "refusal", "format_error"):
        assert key in summary
