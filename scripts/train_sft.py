#!/usr/bin/env python
"""Masked SFT with the kit's own loop, data-parallel through accelerate (one process or many, unchanged).

    python scripts/train_sft.py --model models/tiny-gemma3 --dataset data/dipg --out runs/sft --steps 4 --batch-size 4
    accelerate launch --multi_gpu --num_processes 2 scripts/train_sft.py --model models/tiny-gemma3 --dataset data/dipg \\
        --out runs/sft2 --steps 4 --batch-size 4            # the same global batch of 4 rows, 2 rows per process

Every optimizer step takes the next ``--batch-size`` rows (the global batch, cycled in dataset order);
accelerate's data loader gives each process a disjoint slice of them (``split_batches``). Each row goes
through the model alone (no padding), masked by the kit's token-exact mask (``adapters.masking``). The
loss is the per-token mean over the whole global batch: each process's sum of masked losses is divided
by the global count of target tokens (all-reduced before the backward pass), so N processes compute the
same loss and gradient as one process, up to the order of float additions. The tied embedding is frozen
unless ``--train-embedding`` (as in ``benchmarks/format_learning.py``).

Writes ``OUT/model`` (weights + tokenizer) and ``OUT/train_log.json`` from the main process only, the
whole folder at once (built beside ``OUT`` then renamed). One JSON line per step on stdout
(``{"step", "loss", "grad_norm", "lr", "tokens", "trained_tokens"}``). Exit codes: 0 done, 2 bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.errors import DSAError, OutputExistsError  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example:\n  accelerate launch --multi_gpu --num_processes 2 scripts/train_sft.py --model models/tiny-gemma3 "
               "--dataset data/dipg --out runs/sft --steps 4 --batch-size 4")
    parser.add_argument("--model", required=True, help="a model folder (save_pretrained) or hub id")
    parser.add_argument("--dataset", required=True, help="dataset file or folder (adapters.dataset.load_splits)")
    parser.add_argument("--out", type=Path, required=True, help="output folder: OUT/model, OUT/train_log.json")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=2,
                        help="global rows per optimizer step, over all processes (a multiple of their number)")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--warmup", type=int, default=4, help="linear warm-up steps, then linear decay to 0")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-length", type=int, default=512, help="rows longer than this are dropped, never cut")
    parser.add_argument("--train-rows", type=int, default=None, help="use only the first N rows that fit")
    parser.add_argument("--train-embedding", action="store_true", help="also train the (tied) embedding")
    parser.add_argument("--force", action="store_true", help="replace an existing OUT")
    return parser


def check_args(args) -> None:
    """Bad numbers and paths -> :class:`DSAError` (one line), before any process group work."""
    if args.steps < 1 or args.batch_size < 1 or args.warmup < 0 or args.max_length < 2:
        raise DSAError("--steps and --batch-size must be >= 1, --warmup >= 0, --max-length >= 2")
    if args.train_rows is not None and args.train_rows < 1:
        raise DSAError("--train-rows must be >= 1")
    if not args.lr > 0:
        raise DSAError("--lr must be > 0")
    model = Path(args.model)
    if model.exists() and not (model / "config.json").is_file():
        raise DSAError(f"{model}: not a model folder (no config.json)")
    if args.out.exists() and not args.force:
        raise OutputExistsError(f"{args.out}: already exists (use --force to replace it)")


def load_rows(args, tokenizer) -> list[dict]:
    """Train split -> TRL rows ``{"index", "input_ids", "completion_mask"}`` (the first ``--train-rows`` that fit)."""
    from adapters.dataset import load_splits
    from adapters.masking import mask_batch, to_trl_tokenized

    rows = list(load_splits(args.dataset)["train"])
    examples, _ = mask_batch(rows, tokenizer, max_length=args.max_length)
    examples = examples[: args.train_rows]
    if len(examples) < args.batch_size:
        raise DSAError(f"{args.dataset}: {len(examples)} train rows fit --max-length {args.max_length}, "
                       f"fewer than --batch-size {args.batch_size}")
    out = []
    for index, example in examples:
        trl = to_trl_tokenized(example)
        out.append({"index": index, "input_ids": trl["input_ids"], "completion_mask": trl["completion_mask"]})
    return out


def cycle(loader):
    """Batches of ``loader`` forever, epoch after epoch (the order is the dataset's: no shuffling)."""
    while True:
        yield from loader


def install_folder(staging: Path, out: Path) -> None:
    """Rename the finished ``staging`` folder to ``out``; an old ``out`` is swapped out first, then deleted."""
    if out.exists():
        trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, trash / out.name)
        os.replace(staging, out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staging, out)


def use_cpu() -> bool:
    """True without a GPU: accelerate then runs N launched processes as MULTI_CPU over gloo.

    ``accelerate launch --multi_gpu --num_processes N`` (torchrun underneath) starts the processes on any
    machine, but accelerate 1.15 treats them as one process each unless ``Accelerator(cpu=True)``
    (``accelerate launch --cpu`` with N > 1 goes through ``mpirun`` instead).
    """
    import torch

    if os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes"):
        return True
    return not (torch.cuda.is_available() or torch.backends.mps.is_available())


def train(args) -> dict:
    """Run the steps under the current accelerate launch; returns the log (the same on every process)."""
    import torch
    from accelerate import Accelerator, DataLoaderConfiguration
    from accelerate.utils import gather_object, set_seed
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from adapters.training import learning_rate, masked_loss_sum, trained_tokens

    # split_batches: the loader's batch is the global one and each process gets its own slice of it.
    accelerator = Accelerator(cpu=use_cpu(), dataloader_config=DataLoaderConfiguration(split_batches=True))
    world = accelerator.num_processes
    if args.batch_size % world:
        raise DSAError(f"--batch-size {args.batch_size} is not a multiple of the {world} processes")
    set_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    rows = load_rows(args, tokenizer)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    if not args.train_embedding:
        model.get_input_embeddings().weight.requires_grad_(False)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    loader = torch.utils.data.DataLoader(rows, batch_size=args.batch_size, shuffle=False, drop_last=True,
                                         collate_fn=list)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    params = [p for p in model.parameters() if p.requires_grad]  # FSDP replaces them (sharded) in prepare()
    batches = cycle(loader)
    steps, tokens_seen, start = [], 0, time.time()
    for step in range(args.steps):
        lr = learning_rate(step, args)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = next(batches)  # this process's rows of the global batch
        count = accelerator.reduce(torch.tensor(float(trained_tokens(batch)), dtype=torch.float64), "sum")
        # DDP averages gradients over processes; scaling by world / global count makes that average the
        # gradient of (sum of every process's masked losses) / (global target tokens).
        scale = world / count.item()
        local_sum = torch.zeros((), dtype=torch.float64)
        for i, row in enumerate(batch):
            ids = torch.tensor([row["input_ids"]], device=accelerator.device)
            last = i == len(batch) - 1
            with accelerator.no_sync(model) if not last else contextlib.nullcontext():
                loss_sum, _ = masked_loss_sum(model, ids, row["completion_mask"])
                accelerator.backward(loss_sum * scale)
            local_sum += loss_sum.detach().double()
        grad_norm = float(accelerator.clip_grad_norm_(params, 1.0))  # before clipping: the global gradient's
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        total = accelerator.reduce(local_sum.to(accelerator.device), "sum").item()
        n_tokens = int(accelerator.reduce(torch.tensor(float(sum(len(r["input_ids"]) for r in batch)),
                                                       dtype=torch.float64), "sum").item())
        tokens_seen += n_tokens
        indices = gather_object([[row["index"] for row in batch]])
        record = {"step": step + 1, "loss": total / count.item(), "grad_norm": grad_norm, "lr": lr, "tokens": n_tokens,
                  "trained_tokens": int(count.item()), "rows": indices}
        steps.append(record)
        if accelerator.is_main_process:
            print(json.dumps({k: v for k, v in record.items() if k != "rows"}), flush=True)
    seconds = time.time() - start
    log = {
        "num_processes": world, "backend": str(getattr(accelerator.state, "backend", None)),
        "distributed_type": str(accelerator.distributed_type), "steps": steps, "losses": [s["loss"] for s in steps],
        "global_batch": args.batch_size, "rows_per_process": args.batch_size // world, "rows": len(rows),
        "train_seconds": round(seconds, 3), "tokens_per_second": round(tokens_seen / seconds, 1),
        "lr": args.lr, "warmup": args.warmup, "max_length": args.max_length, "seed": args.seed,
        "train_embedding": args.train_embedding, "model": str(args.model), "dataset": str(args.dataset),
        "torch": torch.__version__, "python": platform.python_version(),
    }
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        out = args.out
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        try:
            accelerator.unwrap_model(model).save_pretrained(staging / "model")
            tokenizer.save_pretrained(staging / "model")
            (staging / "train_log.json").write_text(json.dumps(log, indent=2, sort_keys=True) + "\n")
            install_folder(staging, out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return log


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_args(args)
        train(args)
    except DSAError as exc:
        if os.environ.get("RANK", "0") == "0":
            print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
