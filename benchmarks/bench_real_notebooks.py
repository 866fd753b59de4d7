#!/usr/bin/env python
"""Adapt each real public notebook (../shared/base_notebooks/) and run it on its family kernel (issue 10).

Per notebook: adapt exit code and seconds, papermill exit code, wall seconds and peak RSS (papermill + kernel),
first/last SFT loss (OUTPUT_DIR/train_log.json), GRPO steps done (OUTPUT_DIR/grpo_log.json), strict-format
rate of each evaluation cell (OUTPUT_DIR/eval_*.json), and whether `pip freeze` of the family venv changed.
The run is exactly what tests/test_real_notebooks.py runs (adapters/notebook_runs.run_real_notebook).

Example:
    .venv/bin/python benchmarks/bench_real_notebooks.py                 # all of them
    .venv/bin/python benchmarks/bench_real_notebooks.py trl_sft_lora_qlora --out /tmp/real --markdown r.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.notebook_runs import real_notebooks, real_notebooks_dir, run_real_notebook  # noqa: E402

COLUMNS = ("notebook", "family", "adapt", "adapt s", "run", "wall s", "peak RSS MiB", "SFT loss first -> last",
           "GRPO steps", "strict format", "pip freeze")


def row(result: dict) -> tuple[str, ...]:
    log = result.get("train_log") or {}
    losses = log.get("losses") or []
    grpo = result.get("grpo_log") or {}
    evals = result.get("evals") or {}
    strict = ", ".join(f"{label} {summary['strict_format']:.0%}" for label, summary in evals.items() if summary)
    def num(value, fmt):
        return format(value, fmt) if value is not None else "-"
    return (result["name"], result["family"], str(result["adapt_rc"]), num(result["adapt_s"], ".1f"),
            str(result["returncode"]) if result["returncode"] is not None else "-", num(result["wall_s"], ".0f"),
            num(result["peak_rss_mb"], ".0f"),
            f"{losses[0]:.4f} -> {losses[-1]:.4f}" if losses else "-",
            str(len(grpo.get("steps") or [])) if grpo else "-", strict or "-",
            "changed" if result["freeze_changed"] else "unchanged")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("Example:")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="file stems in the base-notebook folder (default: all)")
    parser.add_argument("--out", default="runs/real", help="run folders go here (default: runs/real)")
    parser.add_argument("--markdown", help="also write the table to this Markdown file")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per papermill run")
    args = parser.parse_args(argv)
    paths = real_notebooks()
    if not paths:
        print(f"error: no real notebooks found (set DSA_BASE_NOTEBOOKS; looked above {Path.cwd()})", file=sys.stderr)
        return 2
    by_name = {p.stem: p for p in paths}
    unknown = [n for n in args.names if n not in by_name]
    if unknown:
        print(f"error: not in {real_notebooks_dir()}: {', '.join(unknown)}", file=sys.stderr)
        return 2
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    failed = 0
    for name in args.names or sorted(by_name):
        result = run_real_notebook(by_name[name], Path(args.out).resolve() / name, timeout=args.timeout)
        failed += result["adapt_rc"] != 0 or result["returncode"] != 0 or result["freeze_changed"]
        lines.append("| " + " | ".join(row(result)) + " |")
        print(lines[-1], flush=True)
        if result["adapt_rc"] != 0:
            print("  adapt: " + result["report"].strip().splitlines()[-1][:300], flush=True)
        elif result["returncode"] != 0:
            print("  run: " + "\n  ".join(result["stderr"].strip().splitlines()[-6:])[:1500], flush=True)
        summary = {k: v for k, v in result.items() if k not in ("freeze_before", "freeze_after", "report", "stderr")}
        (Path(args.out) / name / "result.json").write_text(json.dumps(summary, indent=1, sort_keys=True, default=str))
    table = "\n".join(lines)
    print("\n" + table)
    if args.markdown:
        Path(args.markdown).write_text(
            "Command: `.venv/bin/python benchmarks/bench_real_notebooks.py "
            + " ".join(args.names) + "`\n\n" + table + "\n", encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
