#!/usr/bin/env python
"""Show what the loss mask trains on: per-row token counts, trained tokens, decoded trained spans.

Example:
    python scripts/inspect_masks.py data/dipg --tokenizer models/tiny-gemma3 --rows 2
    python scripts/inspect_masks.py data/dipg_offline.jsonl --tokenizer models/tiny-gemma3 \\
        --split test --max-length 1024 --json > masks.json

Exit codes: 0 done, 2 bad input (unreadable dataset, invalid row, control token, bad tokenizer, a chat
template that cannot express the rows).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.errors import DSAError  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dataset", help="hub id, .jsonl/.json/.parquet file, or saved DatasetDict folder")
    parser.add_argument("--tokenizer", required=True, help="tokenizer folder or hub id: a fast tokenizer with a chat template (Gemma-3: the kit's rendering)")
    parser.add_argument("--rows", type=int, default=3, help="show the decoded trained span of the first N rows (3)")
    parser.add_argument("--max-length", type=int, default=None, help="drop rows whose reply this length would cut")
    parser.add_argument("--split", choices=("train", "test", "all"), default="train", help="split to inspect (train)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    if args.rows < 0:
        parser.error("--rows must be >= 0")
    if args.max_length is not None and args.max_length < 1:
        parser.error("--max-length must be >= 1")
    return args


def load_tokenizer(path: str):
    """A fast tokenizer from a folder or hub id; any failure is one DSAError line."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except Exception as exc:  # noqa: BLE001 - transformers raises many kinds; the user needs one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DSAError(f"{path}: cannot load tokenizer ({first})") from None
    return tokenizer


def select_rows(dataset: str, split: str) -> list[dict]:
    from adapters.dataset import load_splits

    splits = load_splits(dataset)
    names = ("train", "test") if split == "all" else (split,)
    return [dict(row) for name in names for row in splits[name]]


def inspect(rows: list[dict], tokenizer, max_length: int | None, show: int) -> dict:
    """Rows -> report dict (per-row counts, first ``show`` decoded spans, dropped rows, totals)."""
    from adapters.masking import mask_batch

    examples, dropped = mask_batch(rows, tokenizer, max_length=max_length)
    per_row = []
    for index, ex in examples:
        meta = rows[index].get("metadata") or {}
        per_row.append({
            "index": index, "id": meta.get("id"), "type": meta.get("type"),
            "tokens": len(ex.input_ids), "trained": ex.n_trained,
        })
    spans = []
    for index, ex in examples[:show]:
        spans.append({"index": index, "trained_text": tokenizer.decode(ex.trained_ids())})
    total_tokens = sum(r["tokens"] for r in per_row)
    total_trained = sum(r["trained"] for r in per_row)
    lengths = sorted(r["tokens"] for r in per_row)
    return {
        "rows": len(rows),
        "kept": len(examples),
        "dropped": [
            {"index": d.index, "id": (rows[d.index].get("metadata") or {}).get("id"), "kind": d.kind,
             "reason": d.reason, "tokens": d.tokens}
            for d in dropped
        ],
        "tokens": total_tokens,
        "trained_tokens": total_trained,
        "trained_share": round(total_trained / total_tokens, 4) if total_tokens else 0.0,
        "length": {
            "min": lengths[0] if lengths else 0,
            "median": lengths[len(lengths) // 2] if lengths else 0,
            "max": lengths[-1] if lengths else 0,
        },
        "per_row": per_row,
        "spans": spans,
    }


def print_text(report: dict, args: argparse.Namespace) -> None:
    print(f"dataset {args.dataset} (split {args.split}), tokenizer {args.tokenizer}, max_length {args.max_length}")
    print(f"{'row':>5}  {'type':<15}{'tokens':>7}{'trained':>9}{'share':>8}  id")
    shown = report["per_row"][: max(args.rows, 10)]
    for r in shown:
        share = r["trained"] / r["tokens"] if r["tokens"] else 0.0
        print(f"{r['index']:>5}  {str(r['type']):<15}{r['tokens']:>7}{r['trained']:>9}{share:>8.1%}  {r['id']}")
    if len(report["per_row"]) > len(shown):
        print(f"  ... {len(report['per_row']) - len(shown)} more rows (all of them with --json)")
    for span in report["spans"]:
        print(f"\n--- row {span['index']}: trained span (decoded) ---")
        print(span["trained_text"])
    print(f"\ndropped rows: {len(report['dropped'])}")
    for d in report["dropped"]:
        print(f"  row {d['index']} ({d['id']}): {d['kind']}: {d['reason']} ({d['tokens']} tokens)")
    length = report["length"]
    print(
        f"totals: rows {report['rows']}, kept {report['kept']}, dropped {len(report['dropped'])}; "
        f"tokens {report['tokens']}, trained {report['trained_tokens']} ({report['trained_share']:.1%}); "
        f"length min/median/max {length['min']}/{length['median']}/{length['max']}"
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        rows = select_rows(args.dataset, args.split)  # first: a bad dataset fails before the slow load
        tokenizer = load_tokenizer(args.tokenizer)
        report = inspect(rows, tokenizer, args.max_length, args.rows)
    except DSAError as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    if args.json:
        report = {"dataset": str(args.dataset), "split": args.split, "tokenizer": str(args.tokenizer),
                  "max_length": args.max_length, **report}
        print(json.dumps(report, ensure_ascii=False, indent=2, sort_keys=True))
    else:
        print_text(report, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
