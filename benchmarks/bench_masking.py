#!/usr/bin/env python
"""Masking throughput, in one run on the same rows: ours vs TRL's own preparation vs the tokenizer floor.

(a) ours:  adapters.masking.mask_batch (render + ONE batched fast-tokenizer call + masks from offsets)
(b) TRL:   SFTTrainer dataset preparation of conversational prompt/completion rows with
           completion_only_loss=True (dataset_num_proc unset); timed as the SFTTrainer constructor
           and as its preparation alone (``_prepare_dataset`` on a fresh copy), the ratio uses the
           latter (the smaller time, i.e. the figure most favourable to TRL)
(c) floor: one batched fast-tokenizer call with offsets on the already rendered texts

(a) and (c) run interleaved (a, c, a, c, ...) after one untimed warm-up, --repeats times each; the
table shows the best time of each, and the ratio (a)/(c) is also given as the median of the per-pair
ratios, which is robust when other jobs share the CPUs. TRL runs once per setting (it takes seconds).

Per chat template (``--templates gemma,chatml,llama3``): (a) and (c) as above for each template of
``benchmarks/template_tokenizers.py`` (Gemma: the kit's path; ChatML: the SmolLM2 tokenizer's own
template; Llama-3-style: Meta's template on the SmolLM2 tokenizer plus the Llama-3 special tokens),
(c) tokenizing that template's rendered texts; with ``--markdown`` the table replaces the file's
"## Per chat template" section (the rest of the file is kept).

Example:
    python benchmarks/bench_masking.py --dataset data/dipg --tokenizer models/tiny-gemma3
    python benchmarks/bench_masking.py --dataset data/dipg_offline.jsonl --markdown benchmarks/results/masking.md
    python benchmarks/bench_masking.py --dataset data/dipg --templates gemma,chatml,llama3 --repeats 3 \
        --markdown benchmarks/results/masking.md
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.errors import DSAError  # noqa: E402

DEFAULT_TOKENIZER = "models/tiny-gemma3"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", required=True, help="dataset source (all its rows are used: train + test)")
    parser.add_argument("--tokenizer", default=DEFAULT_TOKENIZER,
                        help=f"tiny model folder: tokenizer for all three, model for TRL ({DEFAULT_TOKENIZER})")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats of (a) and (c) (5)")
    parser.add_argument("--skip-trl", action="store_true", help="skip (b) (fast check of (a) vs (c))")
    parser.add_argument("--markdown", help="also write the table to this Markdown file (atomically)")
    parser.add_argument("--templates", help="comma-separated chat templates to compare instead: gemma,chatml,llama3")
    return parser.parse_args(argv)


def _once(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def rendered_texts(rows, tokenizer) -> list[str]:
    """The texts :func:`adapters.masking.mask_batch` tokenizes for this tokenizer (Gemma path or its template)."""
    from adapters.chat_template import read_template, uses_gemma_path
    from adapters.masking import render_rows, template_render_rows

    if uses_gemma_path(tokenizer):
        return [r.text for r in render_rows(rows)]
    return [r.text for r in template_render_rows(rows, tokenizer, read_template(tokenizer))]


def bench_ours_and_floor(rows, tokenizer, repeats: int) -> tuple[list[float], list[float], tuple]:
    """(a) and (c) interleaved -> (times of a, times of c, last mask_batch result).

    (c) gets the rendered texts for free: the floor is the tokenizer call alone.
    """
    from adapters.masking import mask_batch

    texts = rendered_texts(rows, tokenizer)

    def ours():
        return mask_batch(rows, tokenizer)

    def floor():
        return tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)

    floor()  # warm-up: tokenizer caches and lazy imports, for both paths alike
    times_a, times_c, result = [], [], None
    for _ in range(repeats):
        t, result = _once(ours)
        times_a.append(t)
        times_c.append(_once(floor)[0])
    return times_a, times_c, result


def bench_trl(rows, tokenizer, model_dir, extra: dict) -> dict:
    """SFTTrainer on prompt/completion rows: constructor time, preparation-only time, prepared rows,
    and one (a) run right after TRL's (``ours_adjacent``): other jobs on a shared machine change the
    speed of both from minute to minute, so the speed-up is taken between neighbouring runs."""
    from adapters.masking import mask_batch

    import datasets
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from adapters.masking import to_prompt_completion

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    pc_rows = [to_prompt_completion(r["messages"]) for r in rows]
    with tempfile.TemporaryDirectory() as tmp:
        args = SFTConfig(output_dir=tmp, use_cpu=True, report_to=[], max_length=None, **extra)
        dataset = datasets.Dataset.from_list(pc_rows)
        start = time.perf_counter()
        trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
        constructor = time.perf_counter() - start
        fresh = datasets.Dataset.from_list(pc_rows)  # in memory: no datasets cache to hit
        start = time.perf_counter()
        trainer._prepare_dataset(fresh, tokenizer, args, False, None, "train")
        prepare = time.perf_counter() - start
        prepared = trainer.train_dataset
    ours_adjacent = _once(lambda: mask_batch(rows, tokenizer))[0]
    return {"constructor": constructor, "prepare": prepare, "prepared": prepared, "ours_adjacent": ours_adjacent}


def agreement(ours, prepared) -> int:
    """Rows where TRL's labels differ from our mask (or ids differ)."""
    bad = 0
    for (_, ex), out in zip(ours, prepared):
        mask = [int(label != -100) for label in out["labels"]]
        bad += out["input_ids"] != ex.input_ids or mask != ex.loss_mask
    return bad


def versions() -> str:
    import datasets
    import tokenizers
    import torch
    import transformers
    import trl

    return (
        f"python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}, "
        f"trl {trl.__version__}, tokenizers {tokenizers.__version__}, datasets {datasets.__version__}; "
        f"{os.cpu_count()} CPUs, TOKENIZERS_PARALLELISM={os.environ.get('TOKENIZERS_PARALLELISM', 'unset')}"
    )


def run(args) -> str:
    import datasets
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    from adapters.dataset import load_rows

    datasets.disable_progress_bars()
    hf_logging.set_verbosity_error()
    rows = load_rows(args.dataset)
    try:
        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    except Exception as exc:  # noqa: BLE001
        raise DSAError(f"{args.tokenizer}: cannot load tokenizer ({type(exc).__name__})") from None
    n = len(rows)
    times_a, times_c, (ours, dropped) = bench_ours_and_floor(rows, tokenizer, args.repeats)
    t_a, t_c = min(times_a), min(times_c)
    pair_ratio = statistics.median(a / c for a, c in zip(times_a, times_c))
    tokens = sum(len(ex.input_ids) for _, ex in ours)
    lines = [
        f"Masking throughput on {n} rows ({tokens} tokens) of {args.dataset}",
        "",
        "| path | seconds | rows/s | note |",
        "|---|---:|---:|---|",
        f"| (a) ours: `mask_batch` | {t_a:.3f} | {n / t_a:,.0f} | best of {args.repeats}; {len(dropped)} dropped; "
        f"all: {' '.join(f'{t:.2f}' for t in times_a)} |",
    ]
    results = {}
    if not args.skip_trl:
        from adapters.masking import TRL_SFT_KWARGS

        settings = [("completion_only_loss=True", {"completion_only_loss": True}),
                    ("completion_only_loss + assistant_only_loss", dict(TRL_SFT_KWARGS))]
        for label, extra in settings:
            results[label] = r = bench_trl(rows, tokenizer, args.tokenizer, extra)
            r["mismatch"] = agreement(ours, r["prepared"])
            lines.append(
                f"| (b) TRL prepare, {label} | {r['prepare']:.3f} | {n / r['prepare']:,.0f} | "
                f"SFTTrainer() {r['constructor']:.2f} s = {n / r['constructor']:,.0f} rows/s; "
                f"rows whose labels differ from ours: {r['mismatch']}; (a) run right after: "
                f"{r['ours_adjacent']:.2f} s |"
            )
    lines.append(
        f"| (c) floor: one batched tokenizer call | {t_c:.3f} | {n / t_c:,.0f} | best of {args.repeats}; "
        f"all: {' '.join(f'{t:.2f}' for t in times_c)} |"
    )
    lines.append("")
    if results:
        r = results["completion_only_loss=True"]
        lines.append(
            f"- (a)/(b) speed-up over TRL preparation (completion_only_loss=True): {r['prepare'] / t_a:.1f}x "
            f"with (a)'s best, {r['prepare'] / r['ours_adjacent']:.1f}x against the (a) run right after TRL's "
            f"(goal >= 5); over the SFTTrainer constructor: {r['constructor'] / t_a:.1f}x"
        )
    lines.append(
        f"- (c)/(a) ours takes {t_a / t_c:.2f}x the floor's time (best vs best; median of interleaved pairs "
        f"{pair_ratio:.2f}x) (goal <= 2)"
    )
    lines.append(f"- versions: {versions()}")
    lines.append(f"- command: `{shlex.join([sys.executable.split('/')[-1]] + sys.argv)}`")
    return "\n".join(lines) + "\n"


TEMPLATES_HEADING = "## Per chat template"


def run_templates(args) -> str:
    """(a) and (c) per chat template -> the Markdown section (heading included)."""
    import importlib.util

    import datasets
    from transformers.utils import logging as hf_logging

    from adapters.chat_template import read_template, stop_token_ids, uses_gemma_path
    from adapters.dataset import load_rows

    spec = importlib.util.spec_from_file_location("template_tokenizers", Path(__file__).with_name("template_tokenizers.py"))
    templates = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(templates)
    datasets.disable_progress_bars()
    hf_logging.set_verbosity_error()
    rows = load_rows(args.dataset)
    n = len(rows)
    load = os.getloadavg()[0]
    lines = [
        TEMPLATES_HEADING,
        "",
        f"`mask_batch` (a) and one batched tokenizer call on the same rendered texts (c), {n} rows of {args.dataset}, "
        f"interleaved, best of {args.repeats}:",
        "",
        "| template | path | end of turn | stop ids | tokens | dropped | (a) s | (a) rows/s | (c) s | (c) rows/s | (a)/(c) |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in [t.strip() for t in args.templates.split(",") if t.strip()]:
        try:
            tokenizer = templates.load(name)
        except (FileNotFoundError, ValueError) as exc:
            raise DSAError(str(exc)) from None
        times_a, times_c, (ours, dropped) = bench_ours_and_floor(rows, tokenizer, args.repeats)
        t_a, t_c = min(times_a), min(times_c)
        gemma = uses_gemma_path(tokenizer)
        end = "<end_of_turn>" if gemma else read_template(tokenizer).end_of_turn
        tokens = sum(len(ex.input_ids) for _, ex in ours)
        cell_end = end.replace("|", "\\|")  # a bare | would split the Markdown table cell
        lines.append(
            f"| {name} | {'Gemma (adapters/chat.py)' if gemma else 'template (adapters/chat_template.py)'} | "
            f"`{cell_end}` | {', '.join(map(str, stop_token_ids(tokenizer)))} | {tokens} | {len(dropped)} | {t_a:.3f} | "
            f"{n / t_a:,.0f} | {t_c:.3f} | {n / t_c:,.0f} | {t_a / t_c:.2f}x |"
        )
    lines += [
        "",
        "Llama-3-style = Meta's Llama-3-8B-Instruct template on the SmolLM2 tokenizer with the Llama-3 special tokens "
        "added (not Llama's vocabulary); ChatML = the SmolLM2-135M-Instruct tokenizer and template (models/tiny-smollm2).",
        f"- versions: {versions()}; load average at the start {load:.1f} (CPUs shared with other jobs: the "
        "(a)/(c) ratio, from interleaved runs, is the figure that load does not move)",
        f"- command: `{shlex.join([sys.executable.split('/')[-1]] + sys.argv)}`",
    ]
    return "\n".join(lines) + "\n"


def replace_section(old: str, heading: str, section: str) -> str:
    """``old`` Markdown with the section starting at ``heading`` (to the next ``## `` heading) replaced or appended."""
    start = old.find(heading)
    if start < 0:
        return old.rstrip("\n") + "\n\n" + section
    following = old.find("\n## ", start + len(heading))
    tail = old[following + 1 :] if following >= 0 else ""
    return old[:start] + section + ("\n" + tail if tail else "")


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.repeats < 1:
        print("error: --repeats must be >= 1", file=sys.stderr)
        return 2
    try:
        report = run_templates(args) if args.templates else run(args)
    except DSAError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    print(report, end="")
    if args.markdown and args.templates:
        path = Path(args.markdown)
        old = path.read_text(encoding="utf-8") if path.is_file() else "# Masking benchmark\n"
        write_atomic(path, replace_section(old, TEMPLATES_HEADING, report))
    elif args.markdown:
        path = Path(args.markdown)
        kept = ""
        if path.is_file() and TEMPLATES_HEADING in path.read_text(encoding="utf-8"):
            old = path.read_text(encoding="utf-8")
            kept = "\n" + old[old.index(TEMPLATES_HEADING) :]
        write_atomic(path, "# Masking benchmark\n\n" + report + kept)
    return 0


if __name__ == "__main__":
    sys.exit(main())
