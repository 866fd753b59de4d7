"""Every real public notebook (../shared/base_notebooks/, issue 10) adapts and its output runs end to end.

One papermill run per notebook (adapters/notebook_runs.run_real_notebook, the same as
``benchmarks/bench_real_notebooks.py``): the CLI adapts the notebook into a fresh run folder, papermill runs
it on its family's kernel offline on ``models/tiny-gemma3`` and ``data/dipg`` with small knobs and
DSA_SKIP_INSTALL=1. The tests read what the run left:

* the CLI exited 0 and its report names the family;
* papermill exited 0 and no cell of the executed notebook holds an error;
* ``pip freeze`` of the family venv is byte-identical before and after the run;
* ``OUTPUT_DIR/train_log.json`` (SFT stage): one finite loss per step, the last below the first;
* ``OUTPUT_DIR/grpo_log.json`` where the base trains with GRPO: every step logged, finite rewards;
* ``OUTPUT_DIR/eval_*.json``: one reply per evaluation row, and every summary figure equal to what the
  kit's evaluation (``adapters/evaluation.py`` and the gym) computes on those saved replies.

Skipped, with the reason, where the folder of real notebooks is absent (a user's clone) or the model, the
data or a family environment is not built; under ``DSA_CI=1`` (``.ci/run``) such a skip is a failure
(tests/conftest.py). Marked ``real`` and ``e2e``.
"""

from __future__ import annotations

import json
import math
import re

import pytest

from adapters.notebook_runs import (CHATML_MODEL, EVAL_SUMMARY_KEYS, GRPO_KNOBS, KNOBS, NO_REAL_NOTEBOOKS,
                                    REAL_NOTEBOOK_MODELS, environment_missing, eval_mismatches, masking_reference,
                                    real_notebook_model, real_notebooks, real_notebooks_dir, run_real_notebook)

pytestmark = [pytest.mark.e2e, pytest.mark.real]
SUMMARY_FIELDS = {"rows", "strict_format", "failure_kinds", *EVAL_SUMMARY_KEYS}
GRPO_RE = re.compile(r"\bGRPO(Trainer|Learner|Config)\b")
NOTEBOOKS = real_notebooks()


@pytest.fixture(scope="module", params=[p.stem for p in NOTEBOOKS] or ["(none)"])
def real_run(request, tmp_path_factory):
    if not NOTEBOOKS:
        pytest.skip(NO_REAL_NOTEBOOKS)
    path = real_notebooks_dir() / f"{request.param}.ipynb"
    from adapters.notebook_io import read_notebook
    from adapters.notebook_runs import environment_of
    from adapters.patcher import detect_family

    reason = environment_missing(environment_of(detect_family(read_notebook(str(path)))[0]), real_notebook_model(path))
    if reason:
        pytest.skip(f"{path.name} not run: {reason}")
    result = run_real_notebook(path, tmp_path_factory.mktemp(f"real_{request.param}"))
    base_code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                          if c["cell_type"] == "code")
    return result, bool(GRPO_RE.search(base_code))


def test_adapts_and_runs(real_run):
    result, _ = real_run
    assert result["adapt_rc"] == 0, result["report"][-2000:]
    assert result["returncode"] == 0, f"papermill failed for {result['name']}:\n{result['stderr'][-4000:]}"
    nb = json.loads(result["executed"].read_text())
    errors = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors


def test_prepared_environment_unchanged(real_run):
    result, _ = real_run
    assert result["adapt_rc"] == 0, "not adapted: nothing ran"
    assert not result["freeze_changed"], "the notebook changed its family venv:\n" + "\n".join(
        sorted(set(result["freeze_after"].splitlines()) ^ set(result["freeze_before"].splitlines())))


def test_training_logged(real_run):
    result, has_grpo = real_run
    log, grpo = result.get("train_log"), result.get("grpo_log")
    assert log or grpo, f"no train_log.json or grpo_log.json in {result['out_dir']}"
    if log:
        losses = log["losses"]
        assert len(losses) == KNOBS["MAX_STEPS"], f"expected one loss per step, got steps {log['steps']}"
        assert all(math.isfinite(x) for x in losses)
        assert losses[-1] < losses[0], f"SFT loss did not fall: {losses}"
    if has_grpo:
        assert grpo, "the base trains with GRPO but the run wrote no grpo_log.json"
        expected = GRPO_KNOBS["GRPO_MAX_STEPS"] if log else KNOBS["MAX_STEPS"]
        assert len(grpo["steps"]) == expected, f"GRPO steps {grpo['steps']}, expected {expected}"
        assert grpo["rewards"] and all(math.isfinite(x) for x in grpo["rewards"])


def test_evaluation_figures_equal_the_kits(real_run):
    """Each eval_<label>.json: its summary is the kit's evaluation of its own saved replies."""
    result, _ = real_run
    assert result["evals"], f"no eval_*.json in {result['out_dir']}"
    for label in result["evals"]:
        report = json.loads((result["out_dir"] / f"eval_{label}.json").read_text())
        summary, replies = report["summary"], report["replies"]
        assert SUMMARY_FIELDS <= set(summary), (label, SUMMARY_FIELDS - set(summary))
        assert len(replies) == summary["rows"] == KNOBS["NUM_EVAL_ROWS"], label
        assert all(reply.startswith("<think>\n") for reply in replies), (label, "pre-filled <think> lost")
        assert not (diff := eval_mismatches(summary, replies)), (label, diff)


def _printed(executed) -> str:
    nb = json.loads(executed.read_text())
    return "".join("".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code"
                   for o in c.get("outputs", []) if o.get("output_type") == "stream")


def test_non_gemma_notebook_runs_on_its_own_template(real_run):
    """A base written for a non-Gemma model (Qwen3 GRPO) runs on the tiny ChatML model: it renders, masks and
    stops with ChatML (<|im_end|>, id 2), and its SFT rows carry exactly the kit's ChatML mask."""
    result, _ = real_run
    if result["name"] not in REAL_NOTEBOOK_MODELS:
        return  # a Gemma notebook: the tests above cover it
    assert REAL_NOTEBOOK_MODELS[result["name"]] == CHATML_MODEL
    printed = _printed(result["executed"])
    assert "chat template: ChatML" in printed and "stop ids: <|im_end|> (2)" in printed
    assert "GRPO rollouts stop on: <|im_end|> (2) -> [2]" in printed
    assert "<end_of_turn>" not in printed
    log = result["train_log"]
    expected = masking_reference(KNOBS["MAX_TRAIN_ROWS"], KNOBS["MAX_SEQ_LENGTH"], model=CHATML_MODEL)
    assert expected["kept"] > 0
    assert (log["trained_tokens"], log["total_tokens"]) == (expected["trained_tokens"], expected["total_tokens"])
