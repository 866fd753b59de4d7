#!/usr/bin/env python
"""Evaluate dual-stream replies: strict format, the gym's rubric, proof grounding, by type.

Examples:
  # score a file of responses ({"id": ..., "response": ...} per line) against the test split
  python scripts/eval_simple.py --responses runs/sft/responses.jsonl --dataset data/dipg --out runs/sft-eval

  # generate with a model folder (or a LoRA adapter over one), then score; compare with a baseline
  python scripts/eval_simple.py --model models/tiny-gemma3 --dataset data/dipg --limit 10 \\
      --max-new-tokens 64 --out runs/tiny-eval --compare runs/base-eval

Writes OUT/metrics.json, results.jsonl, report.md, report.png (and responses.jsonl with --model),
all at once: on any error nothing is left in OUT. Exit codes: 0 done, 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.errors import DSAError  # noqa: E402
from adapters.eval_run import EvalOptions, run_evaluation  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--responses", type=Path, help="JSONL of {'id' or 'index', 'response'} rows")
    source.add_argument("--model", type=Path, help="transformers folder, or a PEFT LoRA adapter folder over one")
    parser.add_argument("--dataset", required=True, help="hub id, data file or saved folder; its test split is used")
    parser.add_argument("--out", required=True, type=Path, help="output folder (written whole or not at all)")
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists")
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N test rows")
    parser.add_argument("--max-new-tokens", type=int, default=512, help="generation length (--model; default 512)")
    parser.add_argument("--batch-size", type=int, default=8, help="generation batch size (--model; default 8)")
    parser.add_argument(
        "--dtype",
        choices=("auto", "float32", "bfloat16"),
        default="auto",
        help="weights' dtype for generation (--model; default: as saved, except that bfloat16 weights run as "
        "float32 on a CPU without bfloat16 hardware, where they are 2.6x slower). bfloat16 halves the memory each "
        "decoding step reads: ~2x faster on a CPU with AMX, greedy replies may differ from float32's",
    )
    parser.add_argument("--sample", action="store_true", help="sample instead of greedy decoding (--model)")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (with --sample)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--prefill-think",
        action="store_true",
        help="prompts end with '<think>\\n' (--model), or the responses start inside the think block",
    )
    parser.add_argument("--compare", type=Path, default=None, help="another run's OUT folder to show side by side")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for input errors")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.limit is not None and args.limit < 1:
        print("error: --limit must be at least 1", file=sys.stderr)
        return 2
    if args.batch_size < 1 or args.max_new_tokens < 1:
        print("error: --batch-size and --max-new-tokens must be at least 1", file=sys.stderr)
        return 2
    options = EvalOptions(
        dataset=args.dataset,
        out=args.out,
        responses=args.responses,
        model=args.model,
        force=args.force,
        limit=args.limit,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        dtype=args.dtype,
        sample=args.sample,
        temperature=args.temperature,
        seed=args.seed,
        prefill_think=args.prefill_think,
        compare=args.compare,
        progress=not args.no_progress,
    )
    try:
        metrics = run_evaluation(options)
    except DSAError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    overall = metrics["overall"]
    gym = overall["gym"]
    print(
        f"{metrics['n']} rows: strict format {overall['strict_format_rate']:.1%}, "
        f"gym mean reward {gym['mean_reward']:.2f} (gold {metrics['gold']['overall']['mean_reward']:.2f}), "
        f"safe {gym['safe_rate']:.1%}, hallucination {gym['hallucination_rate']:.1%} -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
