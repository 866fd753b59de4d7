"""End to end: an adapted TRL notebook runs under papermill on its family's kernel (the recipe's
``environment``: ``adapters.notebook_runs.ENVIRONMENTS``), on the tiny offline Gemma-3 and the offline DIPG
split: an SFT step on the kit's masked rows, generation with stop ids 106/1, the evaluation file.

The test reads the files the run writes, never printed text:

* ``OUTPUT_DIR/train_log.json``: one finite loss, at step 1; trained and total tokens equal the masking
  core's on the same 8 rows and 384-token budget (rows it would cut are dropped, not cut);
* ``OUTPUT_DIR/eval_after_SFT.json``: its figures equal the kit's evaluation of its saved replies;
* ``OUTPUT_DIR/probe.json``, written by one cell appended after the patcher's output: ``sys.prefix`` of the
  kernel (must be the family venv's), and the notebook's own ``dsa_score_replies`` on the gold replies, the
  gold replies swapped between rows and two broken replies (the tiny model's replies are all format
  errors, so these reach the gym's other branches), each equal to the kit's evaluation.

Slow (a kernel, a model, one optimiser step): marked ``e2e``. Needs ``make models data`` and the family's
venv and kernel (``make env``); skipped with the reason otherwise, a failure under ``DSA_CI=1``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import nbformat
import pytest

from adapters.notebook_io import dumps_notebook, read_notebook
from adapters.notebook_runs import (ENVIRONMENTS, environment_missing, environment_of, eval_mismatches,
                                    masking_reference, run_on_kernel)
from adapters.patcher import adapt
from adapters.recipes import get_recipe

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "notebooks" / "trl_sft_full.ipynb"
# Short rows only: a 262k-vocabulary logit tensor per token is what costs time on CPU.
PARAMS = {"MAX_STEPS": 1, "LOGGING_STEPS": 1, "MAX_TRAIN_ROWS": 8, "MAX_SEQ_LENGTH": 384, "NUM_EVAL_ROWS": 2,
          "MAX_NEW_TOKENS": 8, "USE_SYSTEM_PROMPT": False}
PROBE = """\
import json as _j, sys as _s, pathlib as _p
_g = [dsa_gold(_r) for _r in dsa_eval_rows]
_sets = {"gold": _g, "swapped": _g[::-1], "broken": [_g[0].replace("</answer>", ""), "no tags at all"]}
_p.Path(OUTPUT_DIR, "probe.json").write_text(_j.dumps({"prefix": _s.prefix, "scored": {
    _k: {"replies": _v, "summary": dsa_score_replies(dsa_eval_rows, _v)} for _k, _v in _sets.items()}}))
"""


@pytest.mark.e2e
def test_adapted_trl_notebook_runs(tmp_path):
    result = adapt(read_notebook(FIXTURE))
    environment = environment_of(get_recipe(result.family))
    missing = environment_missing(environment)
    if missing:
        pytest.skip(f"{FIXTURE.name} ({environment}) not run: {missing}")
    result.nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    source = tmp_path / "trl_sft_full.dsa.ipynb"
    source.write_text(dumps_notebook(result.nb))
    run = run_on_kernel(source, tmp_path / "run", environment, PARAMS, timeout=900)
    assert run["returncode"] == 0, f"papermill failed:\n{run['stderr'][-4000:]}"
    out_dir = run["out_dir"]
    probe = json.loads((out_dir / "probe.json").read_text())
    assert Path(probe["prefix"]).resolve() == (ROOT / ENVIRONMENTS[environment][0]).resolve(), probe["prefix"]

    log = json.loads((out_dir / "train_log.json").read_text())
    assert log["steps"] == [1] and len(log["losses"]) == 1 and math.isfinite(log["losses"][0]), log
    expected = masking_reference(PARAMS["MAX_TRAIN_ROWS"], PARAMS["MAX_SEQ_LENGTH"])
    assert expected["kept"] > 0 and expected["kept"] + expected["dropped"] == PARAMS["MAX_TRAIN_ROWS"]
    assert log["trained_tokens"] == expected["trained_tokens"] and log["total_tokens"] == expected["total_tokens"]

    saved = json.loads((out_dir / "eval_after_SFT.json").read_text())
    assert len(saved["replies"]) == saved["summary"]["rows"] == PARAMS["NUM_EVAL_ROWS"]
    assert all(reply.startswith("<think>\n") for reply in saved["replies"])  # pre-fill put back
    assert not (diff := eval_mismatches(saved["summary"], saved["replies"])), diff
    for name, scored in probe["scored"].items():
        assert not (diff := eval_mismatches(scored["summary"], scored["replies"])), (name, diff)
    gold = probe["scored"]["gold"]["summary"]
    assert gold["strict_format"] == 1.0 and gold["format_error"] == 0.0  # the probe reached the gym's rubric
