#!/usr/bin/env python
"""Does the kit teach the dual-stream format? A measured before/after on the real Gemma-3 270M (or ``--model``).

    python benchmarks/format_learning.py --out runs/format_learning --ablation none
    python benchmarks/format_learning.py --out runs/format_learning --ablation offbyone --phases ablation,ablation-eval
    python benchmarks/format_learning.py --model models/smollm2-135m --out runs/format_learning_smollm2

(the defaults are the recipe measured in benchmarks/results/format_learning.md: ~47 min for the first
command's train/after/before phases on 2 CPU cores, 23-29 min per ablation.)

1. fine-tunes ``models/gemma-3-270m`` (full fine-tune of every transformer layer; the tied 262k x 640
   embedding is frozen: the tags are existing tokens, and freezing it removes 63 % of the optimizer
   state and the costly embedding-gradient pass on a CPU) on rows masked by the kit's token-exact
   mask (``adapters.masking``), in a plain PyTorch loop;
2. trains the same recipe again with an ablated mask (``--ablation none``: loss on the whole sequence,
   prompt included; ``offbyone``: the upstream Kaggle mask that starts one token late);
3. evaluates the base model, the fine-tuned model and the ablation on the test split with
   ``scripts/eval_simple.py`` (``--compare`` puts them side by side), and writes ``summary.md``.

Every phase is a separate folder under ``--out``; a phase whose folder is complete is skipped, so an
interrupted run resumes. Seeds are explicit; CPU only.

``--model`` names any transformers folder whose chat template can express the DIPG rows
(:func:`require_kit_template`): Gemma-3 through the kit's Gemma rendering, any other (e.g. the ChatML
``models/smollm2-135m``) through its own template, for masks, prompts and stop ids alike. A template that
cannot (none, no assistant role, no special end-of-turn token, a reply not written verbatim) is refused with
exit 2 before anything runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.chat import STOP_TOKEN_IDS, render_conversation  # noqa: E402
from adapters.dataset import load_splits  # noqa: E402
from adapters.chat_template import PROBE_CONVERSATION, render_with_template, uses_gemma_path  # noqa: E402
from adapters.errors import ConversationError, DSAError, TemplateError  # noqa: E402
from adapters.masking import mask_batch, to_trl_tokenized  # noqa: E402
from adapters.training import PRECISIONS, autocast, learning_rate, masked_loss, require_native_precision  # noqa: E402,F401  (re-exported: demo, tests)


ABLATION_LABELS = {"none": "prompt not masked", "offbyone": "upstream off-by-one mask"}


# Conversations rendered both by the model's template and by the kit (with and without a system turn).
TEMPLATE_PROBES = (
    [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}],
    [{"role": "system", "content": "S."}, {"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}],
)


def model_label(model: str | Path) -> str:
    """A model folder -> the name titles use: the folder's name (``gemma-3-270m``, ``smollm2-135m``)."""
    return Path(model).resolve().name


def require_kit_template(tokenizer, model: str | Path = "model") -> None:
    """Raise :class:`ConversationError` (a :class:`TemplateError` for a template that cannot express the rows)
    unless the kit can mask, prompt and stop with ``tokenizer``'s chat template.

    Training rows are masked by :func:`adapters.masking.mask_batch` and prompts rendered by
    ``scripts/eval_simple.py`` (``adapters.chat_template.model_prompt``, ``adapters.generation.generate``),
    which take the rendering and the stop ids from the tokenizer: Gemma's path renders Gemma-3 turns and stops
    on 106 and 1, any other template renders itself and stops on its end of turn (ChatML: ``<|im_end|>``).
    The checks: a Gemma tokenizer's own template renders each of :data:`TEMPLATE_PROBES` byte for byte as the
    kit does and 106/1 are ``<end_of_turn>``/``<eos>``; another template expresses each probe and a DIPG-shaped conversation
    (:func:`adapters.chat_template.render_with_template`: assistant role, special end-of-turn token, the reply
    verbatim after the generation prompt).
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ConversationError(f"{model}: the tokenizer has no chat template")
    if not uses_gemma_path(tokenizer):
        for messages in (*TEMPLATE_PROBES, list(PROBE_CONVERSATION)):
            try:
                render_with_template(messages, tokenizer)
            except DSAError as exc:
                raise TemplateError(f"{model}: its chat template cannot express the DIPG rows ({exc})") from None
        return
    for messages in TEMPLATE_PROBES:
        theirs = tokenizer.apply_chat_template(messages, tokenize=False)
        ours = render_conversation(messages).text
        if theirs != ours:
            raise ConversationError(
                f"{model}: its chat template renders {theirs[:48]!r}..., but the kit masks, prompts and "
                f"stops a Gemma tokenizer as Gemma-3 ({ours[:48]!r}...)"
            )
    stops = tokenizer.convert_ids_to_tokens(list(STOP_TOKEN_IDS))
    if stops != ["<end_of_turn>", "<eos>"]:
        raise ConversationError(f"{model}: the kit's stop ids {list(STOP_TOKEN_IDS)} are {stops} in its vocabulary")


def check_model(model: str | Path) -> None:
    """:func:`require_kit_template` on the tokenizer of the folder ``model`` (a missing folder: DSAError)."""
    from transformers import AutoTokenizer

    if not (Path(model) / "config.json").is_file():
        raise ConversationError(f"{model}: not a transformers model folder (no config.json)")
    require_kit_template(AutoTokenizer.from_pretrained(str(model)), model)


def ablate(example: dict, mode: str) -> dict:
    """Return TRL rows whose loss mask follows ``mode``: ``reply`` (ours), ``none`` or ``offbyone``."""
    mask = list(example["completion_mask"])
    if mode == "none":
        # Everything but the <bos> is trained, prompt included: what an unmasked SFT run does.
        mask = [0] + [1] * (len(mask) - 1)
    elif mode == "offbyone":
        # The Kaggle notebook's prompt length counts one extra token, so the first reply token is lost.
        first = mask.index(1)
        mask[first] = 0
    elif mode != "reply":
        raise ValueError(mode)
    return {"input_ids": example["input_ids"], "completion_mask": mask, "assistant_masks": mask}


def train(args, mode: str, out: Path, progress: bool = False, max_seconds: float | None = None) -> dict | None:
    """Fine-tune and save to ``out/model``; returns the training log (per-step losses, timings).

    A plain PyTorch loop over the kit's masked rows (batch of one row, no padding, gradient
    accumulation): on a 2-core CPU it is several times faster than TRL's trainer, whose extra
    per-step work (entropy, token accuracy over the 262k vocabulary) dominates at this size.
    ``progress``: a tqdm bar over the steps (loss in its postfix) instead of one line per step.
    ``max_seconds``: wall-time budget of this call. When one more step (the slowest so far, plus the
    checkpoint's own time) would end past it, the weights, optimizer state and losses go to
    ``out/checkpoint.pt`` and the call returns ``None``; the next call resumes there. The loop draws no
    random numbers (rows in order, no dropout), so a resumed run ends with the same weights and losses
    as one uninterrupted run.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(args.seed)
    precision = getattr(args, "precision", "fp32")
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    rows = list(load_splits(args.dataset)["train"])
    examples, dropped = mask_batch(rows, tokenizer, max_length=args.max_length)
    examples = examples[: args.train_rows]
    trl_rows = [ablate(to_trl_tokenized(ex), mode) for _, ex in examples]
    n_tokens = sum(len(r["input_ids"]) for r in trl_rows)
    n_trained = sum(sum(r["completion_mask"]) for r in trl_rows)
    types: dict[str, int] = {}
    for index, _ in examples:
        kind = rows[index]["metadata"]["type"]
        types[kind] = types.get(kind, 0) + 1

    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    model.get_input_embeddings().weight.requires_grad_(False)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    order = list(range(len(trl_rows)))
    losses, seen, start, first, earlier_seconds = [], 0, time.time(), 0, 0.0
    checkpoint = out / CHECKPOINT
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if state.get("precision", "fp32") != precision:
            raise SystemExit(f"error: {checkpoint} was trained with --precision {state.get('precision', 'fp32')}, "
                             f"not {precision}: resume with the same precision")
        first, seen, losses, earlier_seconds = state["step"], state["seen"], state["losses"], state["seconds"]
        print(f"resuming at step {first + 1}/{args.steps} from {checkpoint}", flush=True)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=args.steps, initial=first, desc="training", unit="step")
    slowest = 0.0
    for step in range(first, args.steps):
        elapsed = time.time() - start
        if max_seconds is not None and step > first and elapsed + 1.5 * slowest + CHECKPOINT_SECONDS > max_seconds:
            saved = time.time()
            save_checkpoint(checkpoint, model, optimizer, step=step, seen=seen, losses=losses,
                            seconds=earlier_seconds + elapsed, precision=precision)
            print(f"stopped at step {step}/{args.steps} after {elapsed:.0f} s (checkpoint {checkpoint}, "
                  f"{time.time() - saved:.0f} s to write); run again to resume", flush=True)
            return None
        step_start = time.time()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args)
        step_loss = 0.0
        for _ in range(args.grad_accum):
            row = trl_rows[order[seen % len(order)]]
            seen += 1
            ids = torch.tensor([row["input_ids"]])
            with autocast(precision):
                loss = masked_loss(model, ids, row["completion_mask"])
            (loss / args.grad_accum).backward()
            step_loss += loss.item() / args.grad_accum
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(step_loss)
        if bar is not None:
            bar.set_postfix(loss=f"{step_loss:.3f}")
            bar.update(1)
        else:
            print(f"step {step + 1}/{args.steps} loss {step_loss:.4f} ({time.time() - start:.0f} s)", flush=True)
        slowest = max(slowest, time.time() - step_start)
    if bar is not None:
        bar.close()
    seconds = earlier_seconds + time.time() - start
    model.save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")
    log = {
        "mode": mode,
        "rows": len(trl_rows),
        "rows_by_type": dict(sorted(types.items())),
        "dropped_over_max_length": len(dropped),
        "tokens": n_tokens,
        "trained_tokens": n_trained,
        "steps": args.steps,
        "rows_seen": seen,
        "train_seconds": round(seconds, 1),
        "losses": [round(x, 4) for x in losses],
        "lr": args.lr,
        "warmup": args.warmup,
        "grad_accum": args.grad_accum,
        "max_length": args.max_length,
        "precision": precision,
    }
    (out / "train_log.json").write_text(json.dumps(log, indent=2, sort_keys=True) + "\n")
    checkpoint.unlink(missing_ok=True)
    return log


CHECKPOINT = "checkpoint.pt"
CHECKPOINT_SECONDS = 30.0  # margin for writing one (~2 GB for the 270M: weights and AdamW moments)


def save_checkpoint(path: Path, model, optimizer, **progress) -> None:
    """Weights, optimizer state and ``progress`` (step, rows seen, losses, seconds) -> ``path``, atomically."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), **progress}, tmp)
    tmp.replace(path)


def evaluate(args, model: Path, out: Path, compare: Path | None = None, progress: bool = False) -> None:
    """``scripts/eval_simple.py`` on the first ``args.eval_rows`` test rows of ``args.dataset`` -> ``out``."""
    command = [
        sys.executable, str(ROOT / "scripts/eval_simple.py"),
        "--model", str(model), "--dataset", str(args.dataset), "--out", str(out), "--force",
        "--limit", str(args.eval_rows), "--max-new-tokens", str(args.max_new_tokens),
        "--batch-size", str(args.eval_batch_size),
    ] + ([] if progress else ["--no-progress"])
    if getattr(args, "precision", "fp32") == "bf16":
        command += ["--dtype", "bfloat16"]  # generation with bfloat16 weights: ~2x faster on a CPU with AMX
    if compare is not None:
        command += ["--compare", str(compare)]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def phase(name: str, out: Path, done_file: str, action) -> None:
    """Run ``action`` unless ``out/done_file`` exists; its wall time goes to ``out/seconds.txt``."""
    if (out / done_file).exists():
        print(f"{name}: done already ({out})", flush=True)
        return
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    action()
    seconds = time.time() - start
    (out / "seconds.txt").write_text(f"{seconds:.0f}\n")
    print(f"{name}: {seconds:.0f} s", flush=True)


# (label, path in metrics.json, percent?) for the before/after table.
SUMMARY_ROWS = (
    ("strict format", ("overall", "strict_format_rate"), True),
    ("lenient format", ("overall", "lenient_format_rate"), True),
    ("`<think>` present", ("overall", "tag_presence", "think"), True),
    ("`<proof>` present", ("overall", "tag_presence", "proof"), True),
    ("`<answer>` present", ("overall", "tag_presence", "answer"), True),
    ("proofs quoting the context verbatim", ("overall", "proof_grounding_share"), True),
    ("gym mean reward", ("overall", "gym", "mean_reward"), False),
    ("gym safe", ("overall", "gym", "safe_rate"), True),
    ("gym hallucination", ("overall", "gym", "hallucination_rate"), True),
    ("gym refusal", ("overall", "gym", "refusal_rate"), True),
    ("gym consistency", ("overall", "gym", "consistency_rate"), True),
)


def _lookup(metrics: dict, path: tuple[str, ...]):
    for key in path:
        if not isinstance(metrics, dict) or key not in metrics:
            return None
        metrics = metrics[key]
    return metrics


def _cell(value, percent: bool) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:.1f} %" if percent else f"{value:.2f}"


def summary_markdown(columns: dict[str, dict], gold: dict | None, rows=SUMMARY_ROWS, failures: bool = True) -> str:
    """``{column label: metrics.json}`` -> Markdown: the overall table, strict format by row type, failures.

    ``gold`` is the ``gold`` block of any metrics.json (the dataset's own replies scored the same way):
    the ceiling column. ``rows``: which of :data:`SUMMARY_ROWS`; ``failures``: add the failure-kind table.
    """
    labels = list(columns)
    lines = ["| metric | " + " | ".join(labels) + (" | gold replies |" if gold else " |"),
              "|---" * (len(labels) + 1 + bool(gold)) + "|"]
    for name, path, percent in rows:
        cells = [_cell(_lookup(columns[label], path), percent) for label in labels]
        if gold:
            # metrics.json scores the gold replies with the gym only: the other gold cells stay empty.
            gold_value = _lookup(gold, ("overall",) + path[2:]) if path[1] == "gym" else None
            cells.append(_cell(gold_value, percent) if gold_value is not None else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    types = sorted({t for m in columns.values() for t in m.get("by_type", {})})
    if types:
        lines += ["", "Strict format by row type (rows):", "",
                  "| type | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
        for kind in types:
            cells = []
            for label in labels:
                block = columns[label].get("by_type", {}).get(kind)
                cells.append(f"{_cell(block['strict_format_rate'], True)} ({block['n']})" if block else "n/a")
            lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    if not failures:
        return "\n".join(lines) + "\n"
    lines += ["", "First strict failure per reply:", "", "| kind | " + " | ".join(labels) + " |",
              "|---" * (len(labels) + 1) + "|"]
    kinds = sorted({k for m in columns.values() for k in _lookup(m, ("overall", "strict_failures")) or {}})
    for kind in kinds:
        counts = [str((_lookup(columns[label], ("overall", "strict_failures")) or {}).get(kind, 0)) for label in labels]
        if any(c != "0" for c in counts):
            lines.append(f"| {kind} | " + " | ".join(counts) + " |")
    return "\n".join(lines) + "\n"


def paired_difference(ours: dict[int, float], other: dict[int, float], resamples: int = 10_000,
                      seed: int = 0) -> dict:
    """Per-row gym rewards of two runs on the same rows -> mean of ``ours - other`` with a 95 % CI.

    The interval is a paired bootstrap over rows (``resamples`` draws, explicit ``seed``): the rows
    are the unit that varies, and pairing removes the spread between easy and hard rows.
    """
    import numpy as np

    if sorted(ours) != sorted(other):
        raise ValueError("the two runs were evaluated on different rows")
    diff = np.array([ours[i] - other[i] for i in sorted(ours)], dtype=float)
    means = np.random.default_rng(seed).choice(diff, size=(resamples, len(diff))).mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean": float(diff.mean()), "low": float(low), "high": float(high),
            "better": int((diff > 0).sum()), "worse": int((diff < 0).sum()), "n": len(diff)}


def row_rewards(eval_dir: Path) -> dict[int, float]:
    """``results.jsonl`` of an ``eval_simple.py`` run -> ``{test row index: gym reward}``."""
    rows = (json.loads(line) for line in (eval_dir / "results.jsonl").read_text().splitlines() if line.strip())
    return {row["index"]: row["gym"]["reward"] for row in rows}


def recorded_commands(out: Path) -> list[str]:
    """Every command that computed a phase under ``out``, oldest first (``commands.txt``)."""
    path = out / "commands.txt"
    return path.read_text().splitlines() if path.exists() else []


def environment() -> dict:
    """Versions and machine, for the results file."""
    import os

    import torch
    import transformers

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "machine": f"{platform.machine()}, {cpu}, {os.cpu_count()} CPUs, no GPU" if not torch.cuda.is_available()
            else f"{platform.machine()}, {torch.cuda.get_device_name(0)}"}


def write_summary(args, out: Path) -> Path:
    """Gather the phases' metrics, training logs and wall times into ``out/summary.md``."""
    # Every ablation evaluated under ``out`` gets a column, whichever run produced it.
    evals = {"before (base)": out / "eval-base", "after (masked SFT)": out / "eval-masked"}
    evals.update({f"ablation: {ABLATION_LABELS[mode]}": out / f"eval-{mode}" for mode in ABLATION_LABELS})
    columns = {label: json.loads((path / "metrics.json").read_text())
               for label, path in evals.items() if (path / "metrics.json").exists()}
    if not columns:
        raise SystemExit("error: no evaluation finished under " + str(out))
    gold = next(iter(columns.values())).get("gold")
    env = environment()
    lines = [f"# Format learning: {model_label(args.model)} before/after", "",
             "Commands, in order:", ""] + [f"    {command}" for command in recorded_commands(out)] + ["",
             f"Machine: {env['machine']}; Python {env['python']}, torch {env['torch']}, transformers {env['transformers']}.",
             ""]
    n = {m["n"] for m in columns.values()}
    lines.append(f"Evaluated on the first {'/'.join(map(str, sorted(n)))} test rows, greedy, "
                 f"max {args.max_new_tokens} new tokens.")
    lines.append("")
    lines.append(summary_markdown(columns, gold))
    reference = out / "eval-masked"
    others = [(label, path) for label, path in evals.items()
              if path != reference and (path / "results.jsonl").exists()]
    if (reference / "results.jsonl").exists() and others:
        lines += ["Gym reward of the masked run minus each other run, paired by test row (95 % bootstrap "
                  "interval, 10,000 resamples, seed 0):", "",
                  "| other run | mean difference | 95 % interval | rows better / worse |", "|---|---|---|---|"]
        for label, path in others:
            d = paired_difference(row_rewards(reference), row_rewards(path))
            lines.append(f"| {label} | {d['mean']:+.2f} | [{d['low']:+.2f}, {d['high']:+.2f}] | "
                         f"{d['better']} / {d['worse']} |")
        lines.append("")
    lines += ["Training runs:", "", "| run | rows | tokens | trained tokens | steps | first/last loss | seconds |",
              "|---|---|---|---|---|---|---|"]
    for name in ["train-masked"] + [f"train-{mode}" for mode in ABLATION_LABELS]:
        log_path = out / name / "train_log.json"
        if log_path.exists():
            log = json.loads(log_path.read_text())
            lines.append(f"| {name} | {log['rows']} | {log['tokens']} | {log['trained_tokens']} | {log['steps']} | "
                         f"{log['losses'][0]:.2f} / {log['losses'][-1]:.2f} | {log['train_seconds']:.0f} |")
    lines += ["", "Wall time per phase (s): " + ", ".join(
        f"{d.name} {(d / 'seconds.txt').read_text().strip()}" for d in sorted(out.iterdir())
        if (d / "seconds.txt").exists())]
    path = out / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / "models/gemma-3-270m"))
    parser.add_argument("--dataset", default=str(ROOT / "data/dipg"))
    parser.add_argument("--out", type=Path, default=ROOT / "runs/format_learning")
    parser.add_argument("--train-rows", type=int, default=160)
    parser.add_argument("--max-length", type=int, default=512, help="rows longer than this are dropped, never cut")
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--grad-accum", type=int, default=2, help="rows per optimizer step (one row per forward, no padding)")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--eval-rows", type=int, default=100)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--eval-batch-size", type=int, default=10)
    parser.add_argument("--ablation", choices=tuple(ABLATION_LABELS), default="none")
    parser.add_argument("--phases", default="train,after,before,ablation,ablation-eval",
                        help="comma-separated; the summary (summary.md) is always written at the end")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="bf16: training under CPU autocast (float32 weights and optimizer) and evaluation "
                        "with bfloat16 weights; needs AVX-512 BF16 or AMX (refused without); fp32 (default): "
                        "float32 throughout")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    out = args.out
    phases = args.phases.split(",")
    if {"train", "after", "before", "ablation", "ablation-eval"} & set(phases):
        try:
            check_model(args.model)
            require_native_precision(args.precision)
        except DSAError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exc.exit_code
    masked, ablated = out / "train-masked", out / f"train-{args.ablation}"
    base_eval, after_eval, ablation_eval = out / "eval-base", out / "eval-masked", out / f"eval-{args.ablation}"
    out.mkdir(parents=True, exist_ok=True)
    if set(phases) - {"summary"}:
        config = {k: str(v) for k, v in vars(args).items()}
        (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        command = " ".join(["python benchmarks/format_learning.py", *(sys.argv[1:] if argv is None else argv)])
        with open(out / "commands.txt", "a", encoding="utf-8") as commands:
            commands.write(command + "\n")
    if "train" in phases:
        phase("train masked", masked, "train_log.json", lambda: train(args, "reply", masked))
    if "after" in phases:
        phase("eval masked", after_eval, "metrics.json", lambda: evaluate(args, masked / "model", after_eval))
    if "before" in phases:
        phase("eval base", base_eval, "metrics.json", lambda: evaluate(args, Path(args.model), base_eval))
        # Re-render the fine-tuned report with the base run beside it (scoring only: no generation).
        if (after_eval / "responses.jsonl").exists():
            compare_dir = out / "compare" / "masked-sft"  # the folder name labels the run in the plot
            subprocess.run([
                sys.executable, str(ROOT / "scripts/eval_simple.py"), "--responses", str(after_eval / "responses.jsonl"),
                "--dataset", args.dataset, "--out", str(compare_dir), "--force", "--limit", str(args.eval_rows),
                "--compare", str(base_eval),
            ], check=True)
    if "ablation" in phases:
        phase(f"train {args.ablation}", ablated, "train_log.json", lambda: train(args, args.ablation, ablated))
    if "ablation-eval" in phases:
        phase(f"eval {args.ablation}", ablation_eval, "metrics.json",
              lambda: evaluate(args, ablated / "model", ablation_eval, compare=after_eval))
    print("summary:", write_summary(args, out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
