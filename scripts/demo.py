#!/usr/bin/env python
"""The kit in one command: the real Gemma-3 270M (or ``--model``) before and after masked SFT, on fixed test rows.

    python scripts/demo.py                      # what `make demo` runs (the defaults below)
    python scripts/demo.py --out runs/demo2 --steps 40 --rows-per-type 4

1. ``rows``: picks the first ``--rows-per-type`` test rows of each row type (reasoning, refusal,
   haystack, anti_knowledge) of ``--dataset`` and saves them as a small dataset (its test split);
2. ``before``: scores the base model on them (``scripts/eval_simple.py``, greedy);
3. ``train``: fine-tunes it with the kit's token-exact masked SFT (``benchmarks/format_learning.py``'s
   loop: every transformer layer, the tied embedding frozen, rows of at most ``--max-length`` tokens);
4. ``after``: scores the fine-tuned model on the same rows, compared with ``before`` (report.md,
   report.png), and prints the before/after table with the gold replies' ceiling.

Each phase is a folder under ``--out``; a complete one is skipped, so an interrupted run resumes
(``--force`` starts over). Seeds are explicit; greedy decoding; CPU is enough (about 5 minutes on
2 cores with the defaults). ``--model`` may be any model whose chat template can express the DIPG rows (Gemma-3 through the
kit's rendering, another through its own template: ``format_learning.require_kit_template``); one that cannot
is refused before anything runs. Exit codes: 0 done, 2 bad input.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ROW_TYPES = ("reasoning", "refusal", "haystack", "anti_knowledge")


def load_format_learning():
    """``benchmarks/format_learning.py`` as a module (its training loop, phases and summary table)."""
    spec = importlib.util.spec_from_file_location("format_learning", ROOT / "benchmarks" / "format_learning.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def select_rows(rows: list[dict], per_type: int, types: tuple[str, ...] = ROW_TYPES) -> list[int]:
    """Indices of the first ``per_type`` rows of each type in ``types``, in the split's order.

    Raises ``ValueError`` when a type has fewer than ``per_type`` rows.
    """
    picked: dict[str, list[int]] = {kind: [] for kind in types}
    for index, row in enumerate(rows):
        kind = row.get("metadata", {}).get("type")
        if kind in picked and len(picked[kind]) < per_type:
            picked[kind].append(index)
    short = [f"{kind} ({len(found)})" for kind, found in picked.items() if len(found) < per_type]
    if short:
        raise ValueError(f"fewer than {per_type} test rows of type: {', '.join(short)}")
    return sorted(i for found in picked.values() for i in found)


def write_rows(dataset: str, per_type: int, out: Path) -> None:
    """Save the selected test rows as ``out`` (a dataset folder: train split unchanged, test = the rows)."""
    from adapters.dataset import load_splits, save_splits, to_dataset_dict

    splits = load_splits(dataset)
    test = list(splits["test"])
    indices = select_rows(test, per_type)
    save_splits(to_dataset_dict(list(splits["train"]), [test[i] for i in indices]), out, force=True)
    (out / "rows.json").write_text(json.dumps(
        {"dataset": str(dataset), "test_indices": indices,
         "types": [test[i]["metadata"]["type"] for i in indices]}, indent=2) + "\n")


# The demo's table: the summary table's rows the issue asks for (format_learning.SUMMARY_ROWS labels).
TABLE_ROWS = ("strict format", "`<think>` present", "`<proof>` present", "`<answer>` present",
              "proofs quoting the context verbatim", "gym mean reward", "gym safe", "gym hallucination")


def render_table(before: dict, after: dict, format_learning=None) -> str:
    """Two ``metrics.json`` dicts -> the before/after Markdown table (gold replies as the ceiling),
    then strict format by row type."""
    fl = format_learning or load_format_learning()
    rows = tuple(row for row in fl.SUMMARY_ROWS if row[0] in TABLE_ROWS)
    return fl.summary_markdown({"before (base)": before, "after (masked SFT)": after}, after.get("gold"),
                               rows=rows, failures=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example:\n  python scripts/demo.py --out runs/demo\n\nWrites OUT/summary.md; the report "
               "(before vs after) is OUT/after/report.md and report.png.")
    parser.add_argument("--model", default=str(ROOT / "models/gemma-3-270m"))
    parser.add_argument("--dataset", default=str(ROOT / "data/dipg"))
    parser.add_argument("--out", type=Path, default=ROOT / "runs/demo")
    parser.add_argument("--rows-per-type", type=int, default=3, help="test rows of each of the four types")
    parser.add_argument("--max-new-tokens", type=int, default=224)
    parser.add_argument("--eval-batch-size", type=int, default=12)
    parser.add_argument("--train-rows", type=int, default=80)
    parser.add_argument("--max-length", type=int, default=512, help="training rows longer than this are dropped")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--grad-accum", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--force", action="store_true", help="delete OUT first (no resuming)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if min(args.rows_per_type, args.steps, args.train_rows, args.max_new_tokens, args.eval_batch_size) < 1:
        print("error: --rows-per-type, --steps, --train-rows, --max-new-tokens, --eval-batch-size must be >= 1",
              file=sys.stderr)
        return 2
    fl = load_format_learning()
    try:
        fl.check_model(args.model)
    except fl.DSAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    out: Path = args.out
    if args.force and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({k: str(v) for k, v in vars(args).items()}, indent=2) + "\n")
    rows, before, trained, after = out / "rows", out / "before", out / "train", out / "after"
    progress = not args.no_progress
    start = time.time()

    try:
        fl.phase("rows", rows, "rows.json", lambda: write_rows(args.dataset, args.rows_per_type, rows))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n_rows = len(json.loads((rows / "rows.json").read_text())["test_indices"])
    eval_args = argparse.Namespace(**{**vars(args), "dataset": str(rows), "eval_rows": n_rows})
    fl.phase("before (base model)", before, "metrics.json",
             lambda: fl.evaluate(eval_args, Path(args.model), before, progress=progress))
    fl.phase("train (masked SFT)", trained, "train_log.json",
             lambda: fl.train(args, "reply", trained, progress=progress))
    fl.phase("after (fine-tuned)", after, "metrics.json",
             lambda: fl.evaluate(eval_args, trained / "model", after, compare=before, progress=progress))

    table = render_table(json.loads((before / "metrics.json").read_text()),
                         json.loads((after / "metrics.json").read_text()), fl)
    log = json.loads((trained / "train_log.json").read_text())
    seconds = {d.name: (d / "seconds.txt").read_text().strip() for d in (rows, before, trained, after)
               if (d / "seconds.txt").exists()}
    lines = [
        f"# Demo: {fl.model_label(args.model)} before/after masked SFT", "",
        f"{n_rows} test rows ({args.rows_per_type} of each type), greedy, max {args.max_new_tokens} new tokens; "
        f"training: {log['rows']} rows of at most {args.max_length} tokens, {log['steps']} steps x "
        f"{args.grad_accum} rows, lr {args.lr}, loss {log['losses'][0]:.2f} -> {log['losses'][-1]:.2f}.", "",
        table,
        "Wall time per phase (s): " + ", ".join(f"{name} {s}" for name, s in seconds.items()), "",
    ]
    summary = out / "summary.md"
    summary.write_text("\n".join(lines))
    print()
    print("\n".join(lines))
    print(f"summary: {summary}")
    print(f"report:  {after / 'report.md'}")
    print(f"plot:    {after / 'report.png'}")
    print(f"total:   {time.time() - start:.0f} s (this invocation)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
