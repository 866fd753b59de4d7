#!/usr/bin/env python
"""Regenerate tests/golden/eval/metrics.json: the evaluator on the fixed fixture responses.

Example (from the repo root; review the diff before committing):
  python scripts/regen_golden_eval.py

It runs exactly what tests/test_eval_simple_cli.py::test_golden_run runs:
  eval_simple.py --responses tests/fixtures/eval/responses.jsonl --dataset tests/fixtures/eval/dataset
and copies the resulting metrics.json into tests/golden/eval/. Tests never write golden files.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIXTURES = ROOT / "tests" / "fixtures" / "eval"
GOLDEN = ROOT / "tests" / "golden" / "eval"


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    from scripts.eval_simple import main as eval_main

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "golden-run"
        code = eval_main(["--responses", str(FIXTURES / "responses.jsonl"), "--dataset", str(FIXTURES / "dataset"),
                          "--out", str(out), "--no-progress"])
        if code != 0:
            return code
        GOLDEN.mkdir(parents=True, exist_ok=True)
        staged = GOLDEN / ".metrics.json.tmp"
        shutil.copyfile(out / "metrics.json", staged)
        os.replace(staged, GOLDEN / "metrics.json")
    print(f"wrote {GOLDEN / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
