#!/usr/bin/env python
"""The offline generators beside the real DIPG rows: length/structure profile and the gym's view of the golds.

Generates v1 (adapters/synthetic_dipg.py) and v2 (adapters/synthetic/) rows with the same count and
seed, profiles both (adapters/dipg_profile.py) beside FIELD_NOTES §7's figures of the real rows, and
scores every gold reply with the gym's rubric (adapters/evaluation.gold_ceiling): mean reward, safe
and hallucination rates, and the rubric branch per type, beside the real rows' gold figures
(FIELD_NOTES §7 and issue 11: 95 real evaluation rows). With --tokenizer, also the chat-template token
length of every row (the kit's masking path), by type, and the share of rows a max length would cut:
what a training run's max length must fit. Offline, CPU, seconds.

Example:
    python benchmarks/dipg_profile.py
    python benchmarks/dipg_profile.py --rows 1500 --seed 42 --tokenizer models/gemma-3-270m --markdown benchmarks/results/dipg_profile.md
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters import synthetic  # noqa: E402
from adapters.dipg_profile import REAL, markdown_table, profile  # noqa: E402
from adapters.errors import DSAError  # noqa: E402
from adapters.evaluation import DATASET_TYPES, gold_ceiling  # noqa: E402
from adapters.notebook_io import write_atomic  # noqa: E402
from adapters.synthetic_dipg import generate_rows as generate_v1  # noqa: E402

# The real rows' gold replies as the gym scores them (FIELD_NOTES §7; issue 11's table, 95 rows).
REAL_GOLD = {"mean_reward": 21.11, "safe_rate": 0.653, "hallucination_rate": 0.095,
             "reasoning_mean_reward": 14.91, "answer_correct": "19 of 95"}
BRANCHES_SHOWN = ("answer_correct", "abstention_correct", "conflict_correct", "inconsistent_proof",
                  "ungrounded_proof", "answer_wrong", "abstention_wrong", "conflict_wrong")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=1500, help="rows per generator (1500, the upstream size)")
    parser.add_argument("--seed", type=int, default=42, help="seed for both generators (42)")
    parser.add_argument("--tokenizer", help="model folder whose tokenizer counts chat tokens per row (optional)")
    parser.add_argument("--markdown", help="also write the report to this Markdown file (atomically)")
    return parser.parse_args(argv)


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def gold_table(ceilings: dict[str, dict]) -> str:
    """Gold-reply gym figures by generator, plus the real rows' column."""
    names = list(ceilings)
    head = "| gold replies scored by the gym | " + " | ".join(names) + " | real rows (95, issue 11) |"
    lines = [head, "|---|" + "---:|" * (len(names) + 1)]

    def add(label, cell, real):
        lines.append(f"| {label} | " + " | ".join(cell(ceilings[n]) for n in names) + f" | {real} |")

    add("mean reward", lambda c: f"{c['overall']['mean_reward']:.2f}", f"{REAL_GOLD['mean_reward']:.2f}")
    add("safe", lambda c: _pct(c["overall"]["safe_rate"]), _pct(REAL_GOLD["safe_rate"]))
    add("hallucination", lambda c: _pct(c["overall"]["hallucination_rate"]), _pct(REAL_GOLD["hallucination_rate"]))
    for kind in DATASET_TYPES:
        real = f"{REAL_GOLD['reasoning_mean_reward']:.2f}" if kind == "reasoning" else "–"
        add(f"{kind}: mean reward", lambda c, k=kind: f"{c['by_type'][k]['mean_reward']:.2f}", real)
    for branch in BRANCHES_SHOWN:
        real = REAL_GOLD["answer_correct"] if branch == "answer_correct" else "–"
        add(f"branch {branch}", lambda c, b=branch: str(c["overall"]["branches"][b]), real)
    add("reasoning rows: branch answer_correct",
        lambda c: f"{c['by_type']['reasoning']['branches']['answer_correct']} of "
                  f"{sum(c['by_type']['reasoning']['branches'].values())}", "–")
    return "\n".join(lines) + "\n"


MAX_LENGTHS = (512, 1024, 1536, 2048)


def token_lengths(rows: list[dict], tokenizer) -> dict[str, list[int]]:
    """Rows -> chat-template token counts by type, through the kit's masking (one batched tokenizer call)."""
    from adapters.masking import mask_batch

    examples, dropped = mask_batch(rows, tokenizer)
    if dropped:
        raise DSAError(f"{len(dropped)} row(s) could not be masked: {dropped[0].reason}")
    by_type: dict[str, list[int]] = {}
    for index, example in examples:
        by_type.setdefault(rows[index]["metadata"]["type"], []).append(len(example.input_ids))
    return by_type


def token_table(lengths: dict[str, dict[str, list[int]]]) -> str:
    """Token counts (min / median / max) by generator and type, and the share of rows over each max length."""
    import statistics

    names = list(lengths)
    lines = ["| chat tokens per row | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]

    def spread(values):
        return f"{min(values):,} / {statistics.median(values):,.0f} / {max(values):,}"

    every = {n: [v for vs in lengths[n].values() for v in vs] for n in names}
    lines.append("| all rows (min / median / max) | " + " | ".join(spread(every[n]) for n in names) + " |")
    for kind in DATASET_TYPES:
        lines.append(f"| {kind} | " + " | ".join(spread(lengths[n][kind]) if kind in lengths[n] else "–" for n in names) + " |")
    for limit in MAX_LENGTHS:
        lines.append(f"| rows over {limit:,} tokens | "
                     + " | ".join(_pct(sum(v > limit for v in every[n]) / len(every[n])) for n in names) + " |")
    return "\n".join(lines) + "\n"


def _versions() -> str:
    parts = [f"python {platform.python_version()}"]
    for dist in ("openenv-dipg-safety", "transformers", "tokenizers"):
        try:
            parts.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{dist} (absent)")
    return ", ".join(parts)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.rows < 1:
        print(f"error: --rows must be at least 1, got {args.rows}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    rows = {"v1": generate_v1(args.rows, args.seed), "v2": synthetic.generate_rows(args.rows, args.seed)}
    profiles = {name: profile(r) for name, r in rows.items()}
    ceilings = {name: gold_ceiling(r) for name, r in rows.items()}
    tokens = ""
    if args.tokenizer:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
        table = token_table({name: token_lengths(r, tokenizer) for name, r in rows.items()})
        tokens = (f"## Token lengths ({Path(args.tokenizer).name} tokenizer, Gemma 3 chat template)\n\n{table}\n"
                  "A row over the max length loses its reply's end (the kit drops such rows rather than train a "
                  "truncated reply), so the max length a run needs is the longest row it must keep.\n\n")
    wall = time.perf_counter() - start
    command = "python benchmarks/dipg_profile.py" + "".join(
        f" {flag} {shlex.quote(str(value))}" for flag, value in
        (("--rows", args.rows), ("--seed", args.seed), ("--tokenizer", args.tokenizer), ("--markdown", args.markdown))
        if value is not None)
    report = "\n".join([
        "# Offline DIPG data beside the real rows (issue 11, part 1)",
        "",
        f"{args.rows} rows per generator, seed {args.seed}: v1 = `adapters/synthetic_dipg.py` (the default of "
        "`scripts/make_dipg_dataset.py`), v2 = `adapters/synthetic/` (`--generator v2`). Real = FIELD_NOTES §7 "
        "(measured on upstream evaluation rows we keep back; `–` where §7 gives no figure).",
        "",
        "## Length and structure profile",
        "",
        markdown_table({**profiles, "real rows (FIELD_NOTES §7)": REAL}).rstrip("\n"),
        "",
        "Figures are characters, min / median / max. v2 proofs are all bulleted `- \"…\"` quotes of whole "
        "context sentences (the brief asks for that); the real golds bullet a third and elide 40 %, so their "
        "proofs are not always verbatim. Declining = the answer says the text does not contain the fact, or "
        "that the context is conflicting.",
        "",
        "## The gym's rubric on the gold replies (the ceiling)",
        "",
        gold_table(ceilings).rstrip("\n"),
        "",
        "Every v2 gold is scored at the top of its branch: reasoning and haystack golds 50 (`answer_correct`), "
        "missing-fact and off-topic golds 30 (`abstention_correct`), conflicting-context golds 30 "
        "(`conflict_correct`); the v1 golds were already built to the same ceiling. The real golds score far lower: "
        "the rubric's proof-supports-answer check flags several real reasoning golds (0 or -20, FIELD_NOTES §2) "
        "and 9.5 % of them have a proof the gym calls ungrounded (hallucination), so on real rows a model is "
        "measured against 21.1, never against 42 or 50.",
        "",
        tokens.rstrip("\n"),
        "",
        f"- command: `{command}`",
        f"- versions: {_versions()}; {os.cpu_count()} CPUs; wall time {wall:.1f} s (generation, profile, gym scoring{', tokens' if args.tokenizer else ''})",
        "",
    ])
    try:
        if args.markdown:
            write_atomic(args.markdown, report)
    except DSAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(report, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
