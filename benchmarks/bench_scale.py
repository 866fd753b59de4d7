#!/usr/bin/env python
"""Tokens per second of the kit's masked SFT (scripts/train_sft.py) in 1 process vs N data-parallel processes.

    python benchmarks/bench_scale.py --model models/gemma-3-270m --steps 6 --batch-size 4 \\
        --markdown benchmarks/results/scale.md

Runs the same command (same rows, same global batch, same steps) once as one process and once under
``accelerate launch --multi_gpu --num_processes N`` (torchrun underneath; on a machine without a GPU the
processes are MULTI_CPU over gloo). Reads each run's ``train_log.json``: training seconds (model loaded, steps
only), tokens per second (every input token of the global batch, all processes), the loss curves side by side.
Writes a Markdown table with the command, machine and versions. On a machine with a GPU, N processes need N GPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "train_sft.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(processes: int, args, out: Path, threads: int | None = None) -> dict:
    """One training run -> its train_log.json plus the wall seconds of the whole command.

    ``threads``: OMP_NUM_THREADS for the run (None: torch's default, every core for one process; torchrun
    gives each of N > 1 processes one thread)."""
    common = ["--model", args.model, "--dataset", args.dataset, "--steps", str(args.steps),
              "--batch-size", str(args.batch_size), "--max-length", str(args.max_length), "--lr", str(args.lr),
              "--warmup", "0", "--out", str(out), "--force"]
    if processes == 1:
        command = [sys.executable, str(SCRIPT), *common]
    else:
        command = [str(Path(sys.executable).parent / "accelerate"), "launch", "--multi_gpu", "--num_processes",
                   str(processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                   "--main_process_port", str(free_port()), str(SCRIPT), *common]
    print("+", " ".join(command), flush=True)
    load_before = os.getloadavg()[0]
    start = time.time()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("OMP_NUM_THREADS", None)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    log = json.loads((out / "train_log.json").read_text())
    log["wall_seconds"] = round(time.time() - start, 1)
    log["load"] = (round(load_before, 1), round(os.getloadavg()[0], 1))
    return log


def machine() -> str:
    import torch

    cpu = platform.processor()
    if Path("/proc/cpuinfo").exists():
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), cpu)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU available"
    return f"{platform.machine()}, {cpu}, {os.cpu_count()} CPUs, {gpu}"


def markdown(logs: dict[str, dict], args, command: str) -> str:
    """``{run label: train_log.json (+ wall_seconds, load)}``, the first label the baseline -> Markdown."""
    import accelerate
    import torch
    import transformers

    base = next(iter(logs.values()))
    lines = ["# Data-parallel scaling of the kit's masked SFT", "", "Command:", "", f"    {command}", "",
             f"Machine: {machine()}. Python {platform.python_version()}, torch {torch.__version__}, "
             f"transformers {transformers.__version__}, accelerate {accelerate.__version__}.", "",
             f"Model `{args.model}`, {args.steps} steps x global batch {args.batch_size} rows (at most "
             f"{args.max_length} tokens, one row per forward pass, no padding), lr {args.lr}, fp32.", "",
             "The machine is shared (other jobs ran beside these): the 1-minute load average before/after each run "
             "is in the last column. With 2 cores, 2 processes cannot honestly be more than 2x one process: a "
             "larger ratio means the 2-thread process lost time to thread contention on the busy machine, "
             "which is why the 1-thread run is there.", "",
             "| run | backend | rows per process per step | tokens | train seconds | tokens/s | ratio to 1 | "
             "wall seconds (with start-up) | load before/after |", "|---|---|---|---|---|---|---|---|---|"]
    for label, log in logs.items():
        tokens = sum(step["tokens"] for step in log["steps"])
        lines.append(f"| {label} | {log['backend'] if log['num_processes'] > 1 else '-'} | {log['rows_per_process']} | {tokens} | "
                     f"{log['train_seconds']:.1f} | {log['tokens_per_second']:.0f} | "
                     f"{log['tokens_per_second'] / base['tokens_per_second']:.2f} | {log['wall_seconds']:.0f} | "
                     f"{log['load'][0]} / {log['load'][1]} |")
    labels = list(logs)
    single, multi = logs[labels[1]], logs[labels[-1]]
    lines += ["", f"{labels[-1]} vs {labels[1]}: {multi['tokens_per_second'] / single['tokens_per_second']:.2f}x "
              "tokens/s (the fair comparison on a busy 2-core machine: one thread per process on both sides)."]
    lines += ["", "Loss per step (the same global batch; per-token mean over it):", "",
              "| step | " + " | ".join(logs) + " | max relative difference |",
              "|---" * (len(logs) + 2) + "|"]
    for i, step in enumerate(base["steps"]):
        losses = [log["losses"][i] for log in logs.values()]
        diff = max(abs(x - losses[0]) / abs(losses[0]) for x in losses)
        lines.append(f"| {step['step']} | " + " | ".join(f"{x:.6f}" for x in losses) + f" | {diff:.1e} |")
    if not torch.cuda.is_available():
        lines += ["", "No GPU was available: the issue's GPU figures (tokens/s with padding vs packing/padding-free on "
                  "the DIPG length mix, 270M and a 1B-shaped model) were not measured."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Example:\n  python benchmarks/bench_scale.py --model models/tiny-gemma3 --steps 3")
    parser.add_argument("--model", default=str(ROOT / "models" / "gemma-3-270m"))
    parser.add_argument("--dataset", default=str(ROOT / "data" / "dipg"))
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=4, help="global rows per step (a multiple of --processes)")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--markdown", type=Path, help="write the table here")
    args = parser.parse_args(argv)
    if args.processes < 2 or args.batch_size % args.processes or args.steps < 1:
        print("error: --processes must be >= 2 and divide --batch-size; --steps >= 1", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench_scale-"))
    try:
        logs = {"1 process": run(1, args, work / "p1"),
                "1 process, 1 thread": run(1, args, work / "p1t", threads=1),
                f"{args.processes} processes": run(args.processes, args, work / f"p{args.processes}")}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    command = "python benchmarks/bench_scale.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = markdown(logs, args, command)
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.markdown.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
