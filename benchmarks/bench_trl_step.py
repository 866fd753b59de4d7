#!/usr/bin/env python
"""TRL SFTTrainer steps on the real Gemma-3 270M on CPU: TRL's defaults vs the DSA kit's CPU config.

Each config runs in its own subprocess (fresh model, same rows, same seed), times the SFTTrainer
constructor and every optimiser step (a TrainerCallback), and reports the median step (the first step
apart: it pays one-off warm-up). The rows are the kit's token-exact masked DIPG rows (``mask_batch`` +
``to_trl_tokenized``, as the DSA TRL notebook builds them), LoRA r=16 on every projection as in the
notebook, fp32, eager attention.

* ``trl-defaults``: ``SFTConfig`` as TRL sets it, except ``bf16=False`` (TRL's default ``bf16=True`` is
  refused by transformers without a bf16 device: the one change needed to run at all);
* ``kit``: the same plus what the DSA notebooks set without CUDA (``adapters.recipes.hf_repairs.
  TRL_CPU_OFF``, the keywords the patcher writes into every TRL config).

``--lm-head`` also times TRL's fused LM head alone (``trl.trainer.utils.ChunkedLogProbFunction``,
forward + backward over the 262k vocabulary) on the same token count with the per-token outputs
SFTTrainer always requests (log_probs, entropy, is_top1) vs log_probs only, and over every position
(what runs on CPU) vs only the trained ones (what runs with Triton on CUDA/XPU): costs TRL has no
switch for.

Example:
    python benchmarks/bench_trl_step.py --model models/gemma-3-270m --dataset data/dipg --steps 3 \\
        --markdown benchmarks/results/trl_step.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONFIGS = ("trl-defaults", "kit")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", default="models/gemma-3-270m", help="model folder (models/gemma-3-270m)")
    parser.add_argument("--dataset", default="data/dipg", help="DIPG dataset source, train split used (data/dipg)")
    parser.add_argument("--max-length", type=int, default=256, help="SFT max_length; longer replies dropped (256)")
    parser.add_argument("--batch", type=int, default=2, help="per_device_train_batch_size (2)")
    parser.add_argument("--steps", type=int, default=3, help="optimiser steps per config (3)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma list of {', '.join(CONFIGS)}")
    parser.add_argument("--lm-head", action="store_true", help="also time TRL's fused LM head alone")
    parser.add_argument("--markdown", help="write the result table to this Markdown file (atomically)")
    parser.add_argument("--only", choices=CONFIGS, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args(argv)
    unknown = set(args.configs.split(",")) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown config(s): {', '.join(sorted(unknown))}")
    if args.steps < 2 or args.batch < 1 or args.max_length < 32:
        parser.error("--steps >= 2, --batch >= 1, --max-length >= 32")
    return args


def config_kwargs(name: str) -> dict:
    """The SFTConfig keywords of a config beyond the shared ones (the kit's: evaluated without CUDA)."""
    from adapters.recipes.hf_repairs import TRL_CPU_OFF

    kwargs = {"bf16": False}
    if name == "kit":
        kwargs.update({key: False for key in TRL_CPU_OFF})
    return kwargs


def masked_rows(args, tokenizer) -> list[dict]:
    """The first train rows whose reply fits ``max_length``, enough for every step; -> TRL tokenized rows."""
    from adapters.dataset import read_source
    from adapters.masking import mask_batch, to_trl_tokenized

    rows = read_source(args.dataset)["train"]
    need = args.batch * args.steps
    kept = []
    for start in range(0, len(rows), 64):
        examples, _dropped = mask_batch(rows[start : start + 64], tokenizer, args.max_length)
        kept += [to_trl_tokenized(example) for _, example in examples]
        if len(kept) >= need:
            return kept[:need]
    raise SystemExit(f"error: only {len(kept)} train rows of {args.dataset} fit --max-length {args.max_length}")


def run_one(args) -> dict:
    """Child: one config, fresh model -> {"init_s", "steps_s", "losses", "tokens", "trained_tokens", "kwargs"}."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from adapters.chat import GEMMA_CHAT_TEMPLATE

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    tokenizer.chat_template = GEMMA_CHAT_TEMPLATE
    rows = masked_rows(args, tokenizer)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32, attn_implementation="eager")
    kwargs = config_kwargs(args.only)

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.steps, self.cpu, self.start = [], [], None

        def on_step_begin(self, *_a, **_k):
            self.start = (time.perf_counter(), time.process_time())

        def on_step_end(self, *_a, **_k):
            self.steps.append(time.perf_counter() - self.start[0])
            self.cpu.append(time.process_time() - self.start[1])

    timer = StepTimer()
    with tempfile.TemporaryDirectory() as out:
        config = SFTConfig(
            output_dir=out, max_steps=args.steps, per_device_train_batch_size=args.batch,
            max_length=args.max_length, logging_steps=1, save_strategy="no", report_to="none", seed=42,
            learning_rate=2e-4, **kwargs,
        )
        lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, task_type="CAUSAL_LM",
                          target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
        start = time.perf_counter()
        trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows),
                             processing_class=tokenizer, peft_config=lora, callbacks=[timer])
        init_s = time.perf_counter() - start
        trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {
        "init_s": init_s, "steps_s": timer.steps, "cpu_s": timer.cpu, "losses": losses, "kwargs": kwargs,
        "tokens": sum(len(r["input_ids"]) for r in rows),
        "trained_tokens": sum(sum(r["completion_mask"]) for r in rows),
        "gradient_checkpointing": config.gradient_checkpointing,
    }


def time_lm_head(args, repeats: int = 3) -> list[dict]:
    """TRL's fused LM head alone on the 270M's head: forward + backward, best of ``repeats``."""
    import torch
    from safetensors import safe_open
    from transformers import AutoConfig
    from trl.kernels.chunked_logprob import ChunkedLogProbFunction
    from trl.trainer.utils import _CHUNKED_LOGPROB_CHUNK_SIZE

    config = AutoConfig.from_pretrained(args.model).get_text_config()
    weight = None
    for path in sorted(Path(args.model).glob("*.safetensors")):
        with safe_open(str(path), "pt") as handle:
            for key in handle.keys():
                if key.endswith("embed_tokens.weight"):
                    weight = handle.get_tensor(key).float()
    if weight is None:
        raise SystemExit(f"error: no embed_tokens.weight in {args.model}")
    n = args.batch * args.max_length
    trained = n // 2
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(n, weight.shape[1], generator=gen) * 0.5
    targets = torch.randint(0, weight.shape[0], (n,), generator=gen)
    softcap = getattr(config, "final_logit_softcapping", None)
    cases = [
        ("every position, log_probs + entropy + is_top1 (SFTTrainer on CPU)", n, ("log_probs", "entropy", "is_top1")),
        ("every position, log_probs only", n, ("log_probs",)),
        ("trained positions only, log_probs + entropy + is_top1", trained, ("log_probs", "entropy", "is_top1")),
        ("trained positions only, log_probs only", trained, ("log_probs",)),
    ]
    best = {label: (float("inf"), float("inf")) for label, _, _ in cases}
    for _ in range(repeats):  # interleaved, so a burst of load from other jobs hits every case alike
        for label, count, outputs in cases:
            h = hidden[:count].clone().requires_grad_(True)
            start = (time.perf_counter(), time.process_time())
            log_probs, *_rest = ChunkedLogProbFunction.apply(
                h, weight, None, targets[:count], 1.0, _CHUNKED_LOGPROB_CHUNK_SIZE, softcap, 1.0, outputs)
            (-log_probs.sum()).backward()
            wall, cpu = time.perf_counter() - start[0], time.process_time() - start[1]
            best[label] = (min(best[label][0], wall), min(best[label][1], cpu))
    results = [{"case": label, "tokens": count, "seconds": best[label][0], "cpu_seconds": best[label][1]}
               for label, count, _ in cases]
    return results


def child_command(args, name: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--model", args.model, "--dataset", args.dataset,
            "--max-length", str(args.max_length), "--batch", str(args.batch), "--steps", str(args.steps),
            "--only", name]


def markdown(args, results: dict, lm_head: list[dict] | None, command: str, load: tuple) -> str:
    import torch
    import transformers
    import trl

    names = list(results)
    lines = [
        "# TRL SFTTrainer steps on the real Gemma-3 270M (CPU): TRL defaults vs the DSA kit's config",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, no GPU; Python {platform.python_version()}, "
        f"torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}; "
        f"load average before: {load[0]:.2f} (1 min), after: {load[1]:.2f}.",
        "",
        f"{args.steps} optimiser steps × {args.batch} rows of at most {args.max_length} tokens (LoRA r=16, fp32, "
        "eager attention, the kit's token-exact masked DIPG rows); each config in a fresh process.",
        "",
        "| config | SFTConfig keywords | gradient checkpointing | trainer init (s) | first step wall / CPU (s) | "
        "median later step wall / CPU (s) | losses |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        r = results[name]
        later = statistics.median(r["steps_s"][1:])
        later_cpu = statistics.median(r["cpu_s"][1:])
        kw = ", ".join(f"{k}={v!r}" for k, v in r["kwargs"].items())
        lines.append(f"| {name} | `{kw}` | {r['gradient_checkpointing']} | {r['init_s']:.1f} | "
                     f"{r['steps_s'][0]:.1f} / {r['cpu_s'][0]:.1f} | {later:.1f} / {later_cpu:.1f} | "
                     f"{', '.join(f'{x:.3f}' for x in r['losses'])} |")
    if {"trl-defaults", "kit"} <= set(names):
        base, kit = results["trl-defaults"], results["kit"]
        ratio = statistics.median(base["steps_s"][1:]) / statistics.median(kit["steps_s"][1:])
        ratio_cpu = statistics.median(base["cpu_s"][1:]) / statistics.median(kit["cpu_s"][1:])
        total = sum(base["steps_s"]) / sum(kit["steps_s"])
        total_cpu = sum(base["cpu_s"]) / sum(kit["cpu_s"])
        lines += ["", f"**Ratio trl-defaults / kit per later step (median): {ratio:.2f}× wall, {ratio_cpu:.2f}× CPU "
                  f"time; over all {args.steps} steps {total:.2f}× wall, {total_cpu:.2f}× CPU** "
                  f"({sum(base['steps_s']):.1f} s vs {sum(kit['steps_s']):.1f} s wall, {sum(base['cpu_s']):.1f} s "
                  f"vs {sum(kit['cpu_s']):.1f} s CPU). CPU time (all threads of the process) is the fairer figure "
                  f"while other jobs share the CPUs. Rows: {base['tokens']} tokens, {base['trained_tokens']} trained."]
    if lm_head:
        lines += ["", "TRL's fused LM head alone (`ChunkedLogProbFunction`, forward + backward over the "
                  "262,144-token vocabulary, the 270M's head, best of 3 interleaved runs), the token count of one "
                  "step (half of them trained):", "",
                  "| case | tokens | wall (s) | CPU (s) |", "|---|---|---|---|"]
        lines += [f"| {r['case']} | {r['tokens']} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} |" for r in lm_head]
    return "\n".join(lines) + "\n" + FINDINGS


FINDINGS = """
## What SFTTrainer computes over the 262k vocabulary each step (trl 1.16 source), and the switches

- `SFTTrainer.__init__` patches the model with `add_fused_lm_head(outputs=("log_probs", "entropy", "is_top1"))`
  (`trl/trainer/sft_trainer.py`): the loss never materialises the `(batch, length, 262144)` logits; the LM head
  runs in tiles of 32,768 vocabulary entries (`ChunkedLogProbFunction`, `trl/kernels/chunked_logprob.py`), in the
  model's dtype (fp32 here), and the backward recomputes every tile (three head matmuls per step instead of two).
- `compute_loss` then gathers, every step, the entropy and top-1 token accuracy over the trained positions for the
  logs (`entropy`, `mean_token_accuracy`) and the attention-mask token count (`num_tokens`). **No switch**: the
  outputs tuple is fixed in `__init__`, and `compute_loss` reads `outputs.entropy` / `outputs.is_top1`
  unconditionally. Measured above: about 8 % of the head's time (log_probs + entropy + is_top1 vs log_probs only).
- Without Triton (any CPU), the fused head projects **every position** — prompt, context and padding included —
  not only the trained ones (`compact = _use_triton(device)` in `trl/trainer/utils.py`; Triton on CUDA/XPU
  scores only positions whose label is not -100). **No switch** (a private module-level function); measured above:
  projecting only the trained positions would halve the head's time on these rows (DIPG prompts carry long
  contexts, so the trained share is about half or less). The kit's own loop (`benchmarks/format_learning.py`,
  `make demo`) passes only the trained positions through the head (`logits_to_keep`).
- `compute_loss_func=` or label smoothing would bring the full logits back, plus a second no-grad forward for
  the metrics: slower, not a switch.
- **What TRL lets a config switch off: `gradient_checkpointing`** (TRL's configs default it to True,
  `trl/trainer/base_config.py`; transformers >= 5.2x calls it `activation_checkpointing`): every layer's forward
  runs again in the backward to save GPU memory; on a CPU it only costs time. The patcher writes
  `gradient_checkpointing=DSA_HAS_CUDA` into every TRL config without one (repair `hw_trl_cpu_settings`,
  `adapters/recipes/hf_repairs.py`, listed as a `hardware fallback:` line in the patch report), and an
  author's `gradient_checkpointing=True` / `activation_checkpointing=True` becomes `DSA_HAS_CUDA`: on a GPU the
  notebook runs as written. The losses above are identical with and without it.
- Already handled before this change: `bf16` (TRL's default True is refused without a bf16 device; the patcher
  sets `bf16=DSA_HAS_BF16`), fp32 weights on CPU (`dtype=... if torch.cuda.is_available() else torch.float32`).
  Left as they are: `logging_steps` (the DSA notebooks log every step on purpose; a log costs a few `.item()`
  calls), `group_by_length` / `padding_free` (change the batches, and `padding_free` needs FlashAttention).
"""


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
        handle.write(text)
    os.replace(handle.name, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.only:
        print("RESULT " + json.dumps(run_one(args)))
        return 0
    for path in (args.model, args.dataset):
        if not Path(path).exists():
            print(f"error: {path} not found (make models data)", file=sys.stderr)
            return 2
    command = "python benchmarks/bench_trl_step.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    load_before = os.getloadavg()[0]
    results = {}
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false")
    for name in args.configs.split(","):
        print(f"[{name}] running {args.steps} steps ...", flush=True)
        proc = subprocess.run(child_command(args, name), capture_output=True, text=True, env=env, cwd=ROOT)
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if proc.returncode or not line:
            print(proc.stderr[-3000:], file=sys.stderr)
            print(f"error: config {name} failed (exit {proc.returncode})", file=sys.stderr)
            return 1
        results[name] = json.loads(line[-1][len("RESULT "):])
        r = results[name]
        print(f"[{name}] init {r['init_s']:.1f} s, steps {', '.join(f'{s:.1f}' for s in r['steps_s'])} s wall, "
              f"{', '.join(f'{s:.1f}' for s in r['cpu_s'])} s CPU", flush=True)
    lm_head = time_lm_head(args) if args.lm_head else None
    text = markdown(args, results, lm_head, command, (load_before, os.getloadavg()[0]))
    print(text)
    if args.markdown:
        write_atomic(Path(args.markdown), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
