#!/usr/bin/env python
"""float32 vs bfloat16 on this CPU: the SFT step and greedy generation of the 270M, side by side.

    python benchmarks/bench_precision.py --markdown benchmarks/results/precision.md

Training: the kit's masked loss (``adapters.training.masked_loss``, one row per forward, loss positions
only) forward + backward + AdamW step on ``--train-rows`` v2 rows, once in float32 and once under
``adapters.training.autocast("bf16")`` (float32 weights and optimizer, bfloat16 products), the two runs
interleaved row by row so the machine's other load falls on both alike; each from the same weights.
Generation: ``adapters.generation.generate`` (greedy, batched) on ``--gen-rows`` v2 test prompts with
float32 weights and with bfloat16 weights. Prints (and writes with ``--markdown``) seconds, tokens per
second, the bf16/fp32 speed ratio, how far the bf16 losses are from the fp32 ones, and how many greedy
replies are the same token for token. A 2-core CPU with AMX (``amx_bf16`` in /proc/cpuinfo) is where the
ratio is large; without bfloat16 hardware (AVX2 alone) bfloat16 is far slower than float32, the backward most
(``adapters.training.cpu_has_native_bf16``; ``benchmarks/results/precision.md`` (AMX) and ``precision_avx2.md`` (AVX2)).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import format_learning as FL  # noqa: E402  (check_model, environment)
from adapters.notebook_io import write_atomic  # noqa: E402
from adapters.training import PRECISIONS, autocast  # noqa: E402


def v2_rows(n_rows: int, seed: int) -> list[dict]:
    """``n_rows`` offline v2 rows (the data the recipe trains on), deterministic in ``seed``."""
    from adapters import synthetic

    return synthetic.generate_rows(n_rows, seed)


def train_times(model_dir: str, rows: list[dict], tokenizer) -> dict[str, dict]:
    """Per precision: seconds of each row's forward + backward + optimizer step, and each row's loss."""
    import torch
    from transformers import AutoModelForCausalLM

    from adapters.masking import mask_batch, to_trl_tokenized
    from adapters.training import masked_loss

    examples, _ = mask_batch(rows, tokenizer, max_length=1536)
    trl_rows = [to_trl_tokenized(example) for _, example in examples]
    setups = {}
    for precision in PRECISIONS:
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        model.get_input_embeddings().weight.requires_grad_(False)
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        setups[precision] = (model, torch.optim.AdamW(params, lr=1e-5, weight_decay=0.0))
    results = {p: {"seconds": [], "losses": [], "tokens": []} for p in PRECISIONS}
    for row in trl_rows:
        ids = torch.tensor([row["input_ids"]])
        for precision, (model, optimizer) in setups.items():
            start = time.perf_counter()
            with autocast(precision):
                loss = masked_loss(model, ids, row["completion_mask"])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            results[precision]["seconds"].append(time.perf_counter() - start)
            results[precision]["losses"].append(loss.item())
            results[precision]["tokens"].append(len(row["input_ids"]))
    return results


def generation_times(model_dir: str, rows: list[dict], max_new_tokens: int, batch_size: int) -> dict[str, dict]:
    """Per weights dtype: seconds to generate greedy replies to ``rows``' prompts, and the replies' ids."""
    import torch

    from adapters.chat_template import model_prompt
    from adapters.generation import generate, load_model

    results = {}
    for dtype in ("float32", "bfloat16"):
        model, tokenizer = load_model(model_dir, dtype=dtype)
        prompts = [model_prompt(row["messages"], tokenizer) for row in rows]
        start = time.perf_counter()
        replies = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)
        seconds = time.perf_counter() - start
        new_tokens = sum(len(tokenizer(r, add_special_tokens=False)["input_ids"]) for r in replies)
        results[dtype] = {"seconds": seconds, "replies": replies, "new_tokens": new_tokens}
        del model
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
    return results


def markdown(train: dict, gen: dict, args, env: dict, cpu_flags: str) -> str:
    """The tables and the command that measured them."""
    fp, bf = train["fp32"], train["bf16"]
    tokens = sum(fp["tokens"])
    rel = [abs(b - f) / f for f, b in zip(fp["losses"], bf["losses"])]
    # The first row of each run includes one-off costs (allocations, oneDNN kernel choice): not counted.
    fp_s, bf_s = sum(fp["seconds"][1:]), sum(bf["seconds"][1:])
    counted = sum(fp["tokens"][1:])
    same = sum(a == b for a, b in zip(gen["float32"]["replies"], gen["bfloat16"]["replies"]))
    lines = [
        f"# float32 vs bfloat16 on this CPU ({Path(args.model).name})", "",
        "    python benchmarks/bench_precision.py " + " ".join(sys.argv[1:]), "",
        f"Machine: {env['machine']} ({cpu_flags}); Python {env['python']}, torch {env['torch']}, "
        f"transformers {env['transformers']}; torch threads {args.threads}.", "",
        f"Training: {len(fp['seconds'])} v2 rows ({tokens} tokens), one row per forward + backward + AdamW step, "
        "the two precisions interleaved row by row (first row of each not timed).", "",
        "| training | seconds | tokens/s | median s/row | ratio |", "|---|---:|---:|---:|---:|",
        f"| float32 | {fp_s:.1f} | {counted / fp_s:.0f} | {statistics.median(fp['seconds'][1:]):.2f} | 1.00 |",
        f"| bf16 autocast (float32 weights and AdamW) | {bf_s:.1f} | {counted / bf_s:.0f} | "
        f"{statistics.median(bf['seconds'][1:]):.2f} | {fp_s / bf_s:.2f} |", "",
        f"bf16 loss vs float32 loss of each row (both runs from the same weights, same rows in the same order): "
        f"relative difference median "
        f"{statistics.median(rel):.4f}, max {max(rel):.4f}.", "",
        f"Generation: {len(gen['float32']['replies'])} v2 test prompts, greedy, max {args.max_new_tokens} new tokens, "
        f"batch {args.batch_size}.", "",
        "| generation | seconds | new tokens | new tokens/s | ratio |", "|---|---:|---:|---:|---:|",
    ]
    base = gen["float32"]["seconds"]
    for dtype, label in (("float32", "float32 weights"), ("bfloat16", "bfloat16 weights")):
        g = gen[dtype]
        lines.append(f"| {label} | {g['seconds']:.1f} | {g['new_tokens']} | {g['new_tokens'] / g['seconds']:.1f} | "
                     f"{base / g['seconds']:.2f} |")
    lines += ["", f"Greedy replies identical token for token: {same} of {len(gen['float32']['replies'])}.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / "models/gemma-3-270m"))
    parser.add_argument("--train-rows", type=int, default=9, help="rows timed per precision (the first is warm-up)")
    parser.add_argument("--gen-rows", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7, help="v2 generator seed")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the tables here")
    args = parser.parse_args(argv)
    if min(args.train_rows, args.gen_rows, args.max_new_tokens, args.batch_size) < 1 or args.train_rows < 2:
        print("error: --train-rows must be at least 2; --gen-rows, --max-new-tokens, --batch-size at least 1",
              file=sys.stderr)
        return 2
    try:
        FL.check_model(args.model)
    except FL.DSAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    import torch
    from transformers import AutoTokenizer

    args.threads = torch.get_num_threads()
    rows = v2_rows(args.train_rows + args.gen_rows, args.seed)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    train = train_times(args.model, rows[: args.train_rows], tokenizer)
    gen = generation_times(args.model, rows[args.train_rows:], args.max_new_tokens, args.batch_size)
    flags = Path("/proc/cpuinfo").read_text().split() if Path("/proc/cpuinfo").exists() else []
    cpu_flags = "AMX bf16" if "amx_bf16" in flags else ("AVX-512 bf16, no AMX" if "avx512_bf16" in flags else "no bf16 units")
    text = markdown(train, gen, args, FL.environment(), cpu_flags)
    print(text)
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(args.markdown, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
