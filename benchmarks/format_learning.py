#!/usr/bin/env python
"""Does the kit teach the dual-stream format? A measured before/after on the real Gemma-3 270M.

    python benchmarks/format_learning.py --out runs/format_learning

1. fine-tunes ``models/gemma-3-270m`` (full fine-tune of every transformer layer; the tied 262k x 640
   embedding is frozen: the tags are existing tokens, and freezing it removes 63 % of the optimizer
   state and the costly embedding-gradient pass on a CPU) with TRL's ``SFTTrainer`` on pre-tokenized
   rows from the kit's token-exact mask (``adapters.masking``);
2. trains the same recipe again with an ablated mask (``--ablation none``: loss on the whole sequence,
   prompt included; ``offbyone``: the upstream Kaggle mask that starts one token late);
3. evaluates the base model, the fine-tuned model and the ablation on the test split with
   ``scripts/eval_simple.py`` (``--compare`` puts them side by side), and writes ``summary.md``.

Every phase is a separate folder under ``--out``; a phase whose folder is complete is skipped, so an
interrupted run resumes. Seeds are explicit; CPU only.
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

from adapters.dataset import load_splits  # noqa: E402
from adapters.masking import mask_batch, to_trl_tokenized  # noqa: E402


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


def train(args, mode: str, out: Path) -> dict:
    """Fine-tune and save to ``out/model``; returns the training log (per-step losses, timings)."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    torch.manual_seed(args.seed)
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
    config = SFTConfig(
        output_dir=str(out / "trainer"),
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=args.grad_accum,
        learning_rate=args.lr,
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=args.warmup,
        max_grad_norm=1.0,
        weight_decay=0.0,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=args.seed,
        data_seed=args.seed,
        max_length=None,
        completion_only_loss=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(trl_rows), processing_class=tokenizer)
    start = time.time()
    trainer.train()
    seconds = time.time() - start
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
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
        "train_seconds": round(seconds, 1),
        "tokens_per_second": round(n_tokens * args.steps * args.batch_size * args.grad_accum / max(len(trl_rows), 1) / seconds, 1),
        "losses": [round(x, 4) for x in losses],
    }
    (out / "train_log.json").write_text(json.dumps(log, indent=2, sort_keys=True) + "\n")
    return log


def evaluate(args, model: Path, out: Path, compare: Path | None = None) -> None:
    command = [
        sys.executable, str(ROOT / "scripts/eval_simple.py"),
        "--model", str(model), "--dataset", args.dataset, "--out", str(out), "--force",
        "--limit", str(args.eval_rows), "--max-new-tokens", str(args.max_new_tokens),
        "--batch-size", str(args.eval_batch_size), "--no-progress",
    ]
    if compare is not None:
        command += ["--compare", str(compare)]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def phase(name: str, out: Path, done_file: str, action) -> None:
    if (out / done_file).exists():
        print(f"{name}: done already ({out})", flush=True)
        return
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    action()
    print(f"{name}: {time.time() - start:.0f} s", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / "models/gemma-3-270m"))
    parser.add_argument("--dataset", default=str(ROOT / "data/dipg"))
    parser.add_argument("--out", type=Path, default=ROOT / "runs/format_learning")
    parser.add_argument("--train-rows", type=int, default=80)
    parser.add_argument("--max-length", type=int, default=512, help="rows longer than this are dropped, never cut")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--grad-accum", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--eval-rows", type=int, default=100)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--eval-batch-size", type=int, default=10)
    parser.add_argument("--ablation", choices=("none", "offbyone"), default="none")
    parser.add_argument("--phases", default="train,after,before,ablation,ablation-eval")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    out = args.out
    phases = args.phases.split(",")
    masked, ablated = out / "train-masked", out / f"train-{args.ablation}"
    base_eval, after_eval, ablation_eval = out / "eval-base", out / "eval-masked", out / f"eval-{args.ablation}"
    (out).mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({k: str(v) for k, v in vars(args).items()}, indent=2, sort_keys=True) + "\n")
    if "train" in phases:
        phase("train masked", masked, "train_log.json", lambda: train(args, "reply", masked))
    if "after" in phases:
        phase("eval masked", after_eval, "metrics.json", lambda: evaluate(args, masked / "model", after_eval))
    if "before" in phases:
        phase("eval base", base_eval, "metrics.json", lambda: evaluate(args, Path(args.model), base_eval))
        # Re-render the fine-tuned report with the base run beside it (scoring only: no generation).
        if (after_eval / "responses.jsonl").exists():
            compare_dir = out / "eval-masked-vs-base"
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
    print(json.dumps({"python": platform.python_version(), "machine": platform.machine(), "cpus": __import__("os").cpu_count()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
