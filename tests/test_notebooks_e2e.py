"""Each DSA notebook (notebooks/dsa/) runs end to end under papermill, offline, on its family kernel.

One papermill run per family, in a fresh run folder used as the kernel's working directory (nothing
lands in the repo), on ``models/tiny-gemma3`` and ``data/dipg`` with small knobs. The tests read what
the run left, never printed text:

* ``OUTPUT_DIR/train_log.json`` (written by the kit cell ``hf_train_log``): per-step losses finite and
  the last below the first; the trained-token share equals what ``adapters.masking.mask_batch`` gives
  on the same rows;
* ``OUTPUT_DIR/eval_*.json`` (the evaluation cell): every summary field present;
* the executed notebook: no cell raised (papermill exits non-zero otherwise).

Marked ``e2e`` (slow: tens of seconds per family on 2 CPU cores). A family is skipped, with the reason,
only when its virtual environment or kernel is absent (``make env-families`` builds them).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from adapters.notebook_runs import DATA, FAMILIES, KNOBS, MODEL, Family, missing_requirements, run_notebook

SUMMARY_FIELDS = {"rows", "strict_format", "failure_kinds", "gym_mean_reward", "safe", "hallucination",
                  "refusal", "format_error"}


def expected_share(family: Family) -> float:
    """The masking core on the notebook's own rows: first MAX_TRAIN_ROWS train rows, MAX_SEQ_LENGTH."""
    from transformers import AutoTokenizer

    from adapters.chat import GEMMA_CHAT_TEMPLATE
    from adapters.dataset import load_splits
    from adapters.masking import mask_batch

    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    tokenizer.chat_template = GEMMA_CHAT_TEMPLATE
    rows = list(load_splits(str(DATA))["train"])[: KNOBS["MAX_TRAIN_ROWS"]]
    conversations = [[m for m in row["messages"] if m["role"] in ("user", "assistant")] for row in rows]
    masked, _dropped = mask_batch(conversations, tokenizer, KNOBS["MAX_SEQ_LENGTH"])
    trained = sum(sum(example.loss_mask) for _, example in masked)
    total = sum(len(example.input_ids) for _, example in masked)
    assert total > 0, "no row fits MAX_SEQ_LENGTH: the knobs leave nothing to train"
    return trained / total


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def executed_run(request, tmp_path_factory):
    family = FAMILIES[request.param]
    missing = missing_requirements(family)
    if missing:
        pytest.skip(f"{family.notebook} not run: {missing}")
    if family.not_run:
        pytest.skip(family.not_run)
    run = run_notebook(family, tmp_path_factory.mktemp(f"run_{request.param}"))
    assert run["returncode"] == 0, f"papermill failed for {family.notebook}:\n{run['stderr'][-4000:]}"
    return family, run["executed"], run["out_dir"]


pytestmark = pytest.mark.e2e


def test_loss_finite_and_decreasing(executed_run):
    family, _executed, out_dir = executed_run
    log = json.loads((out_dir / "train_log.json").read_text())
    losses = log["losses"]
    assert len(losses) == KNOBS["MAX_STEPS"], f"expected one loss per step, got {log['steps']}"
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < losses[0], f"loss did not decrease: {losses}"


def test_trained_token_share_matches_masking_core(executed_run):
    family, _executed, out_dir = executed_run
    log = json.loads((out_dir / "train_log.json").read_text())
    assert log["trained_tokens"] and log["total_tokens"]
    assert log["trained_share"] == pytest.approx(expected_share(family), abs=1e-9)


def test_metrics_files_have_every_field(executed_run):
    family, _executed, out_dir = executed_run
    for label in family.eval_labels:
        path = out_dir / f"eval_{label}.json"
        assert path.is_file(), f"missing {path.name}; have {sorted(p.name for p in out_dir.iterdir())}"
        report = json.loads(path.read_text())
        assert SUMMARY_FIELDS <= set(report["summary"]), SUMMARY_FIELDS - set(report["summary"])
        assert report["summary"]["rows"] == KNOBS["NUM_EVAL_ROWS"]
        assert len(report["replies"]) == KNOBS["NUM_EVAL_ROWS"]


def test_executed_notebook_has_no_error(executed_run):
    family, executed, _out_dir = executed_run
    nb = json.loads(executed.read_text())
    errors = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    assert nb["metadata"]["papermill"]["parameters"]["MODEL_ID"] == str(MODEL)
