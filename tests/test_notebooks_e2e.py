"""Each DSA notebook (notebooks/dsa/) runs end to end under papermill, offline, on its family kernel.

One papermill run per family, in a fresh run folder used as the kernel's working directory (nothing
lands in the repo), on ``models/tiny-gemma3`` and ``data/dipg`` with small knobs. The tests read what
the run left, never printed text:

* ``OUTPUT_DIR/train_log.json`` (written by the kit cell ``hf_train_log``): per-step losses finite and
  the last below the first; the trained and total token counts equal what ``adapters.masking.mask_batch``
  gives on the same rows;
* ``OUTPUT_DIR/eval_*.json`` (the evaluation cell): every summary figure equals what the kit's evaluation
  (``adapters/evaluation.py`` and the gym) computes on the replies the notebook saved, against the same
  test rows (``adapters.notebook_runs.eval_mismatches``);
* the executed notebook: no cell raised (papermill exits non-zero otherwise).

Marked ``e2e`` (slow: tens of seconds per family on 2 CPU cores). A family is skipped, with the reason,
only when the model, the data, its virtual environment or kernel is absent (``make models data
env-families`` builds them); under ``DSA_CI=1`` (``.ci/run``) that skip is a failure (tests/conftest.py).
"""

from __future__ import annotations

import json
import math

import pytest

from adapters.notebook_runs import (EVAL_SUMMARY_KEYS, FAMILIES, KNOBS, MODEL, eval_mismatches,
                                    masking_reference, missing_requirements, run_notebook)

SUMMARY_FIELDS = {"rows", "strict_format", "failure_kinds", *EVAL_SUMMARY_KEYS}


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


def test_trained_tokens_match_masking_core(executed_run):
    family, _executed, out_dir = executed_run
    log = json.loads((out_dir / "train_log.json").read_text())
    expected = masking_reference(KNOBS["MAX_TRAIN_ROWS"], KNOBS["MAX_SEQ_LENGTH"])
    assert expected["kept"] > 0, "no row fits MAX_SEQ_LENGTH: the knobs leave nothing to train"
    assert log["trained_tokens"] == expected["trained_tokens"] and log["total_tokens"] == expected["total_tokens"]
    assert log["trained_share"] == pytest.approx(expected["trained_share"], abs=1e-9)


def test_evaluation_figures_equal_the_kits(executed_run):
    """Each eval_<label>.json: its summary is the kit's evaluation of its own saved replies."""
    family, _executed, out_dir = executed_run
    for label in family.eval_labels:
        path = out_dir / f"eval_{label}.json"
        assert path.is_file(), f"missing {path.name}; have {sorted(p.name for p in out_dir.iterdir())}"
        report = json.loads(path.read_text())
        summary, replies = report["summary"], report["replies"]
        assert SUMMARY_FIELDS <= set(summary), SUMMARY_FIELDS - set(summary)
        assert len(replies) == summary["rows"] == KNOBS["NUM_EVAL_ROWS"]
        assert all(reply.startswith("<think>\n") for reply in replies), "the pre-filled <think> was lost"
        assert not (diff := eval_mismatches(summary, replies)), (label, diff)


def test_executed_notebook_has_no_error(executed_run):
    family, executed, _out_dir = executed_run
    nb = json.loads(executed.read_text())
    errors = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    assert nb["metadata"]["papermill"]["parameters"]["MODEL_ID"] == str(MODEL)
