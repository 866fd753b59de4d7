#!/usr/bin/env python
"""The whole DSA recipe as one resumable benchmark: data -> SFT -> evaluation -> GRPO -> evaluation -> report.

    python benchmarks/dsa_recipe.py --out runs/dsa_recipe --phases data,sft
    python benchmarks/dsa_recipe.py --out runs/dsa_recipe            # every phase; finished ones are skipped
    python benchmarks/dsa_recipe.py --out runs/dsa_recipe --phases grpo   # again and again until GRPO is done

Phases (each a folder under ``--out``; a phase whose folder is complete is skipped):

* ``data``: the offline v2 generator (``scripts/make_dipg_dataset.py --generator v2``) and
  ``scripts/prepare_dataset.py`` -> ``OUT/data/dipg`` (the upstream split: last 100 rows test). With
  ``--dataset PATH`` that dataset is used instead and this phase does nothing.
* ``sft``: ``benchmarks/format_learning.py``'s masked SFT (full fine-tune, embedding frozen) on the train
  rows, ``--max-length 1536`` by default so the haystack rows are kept -> ``OUT/sft/model``. One
  invocation trains for at most ``--sft-max-minutes``; if steps remain it leaves ``OUT/sft/checkpoint.pt``
  and the next invocation resumes from it (same weights as one uninterrupted run).
* ``eval-base``, ``eval-sft``, ``eval-grpo``: ``scripts/eval_simple.py`` (greedy) on the first
  ``--eval-rows`` test rows -> ``OUT/eval-*/metrics.json``, ``results.jsonl``.
* ``grpo``: TRL's ``GRPOTrainer`` from the SFT weights with the kit's three DSA rewards (strict format,
  partial format, the gym rubric scaled by 0.02: ``adapters.rewards.trl_rewards``), on the CPU. One
  invocation trains for at most ``--grpo-max-minutes`` (and ``--grpo-steps-per-call`` steps, if given):
  if steps remain, it saves a checkpoint under ``OUT/grpo/checkpoints`` and the next invocation resumes
  from it. When all ``--grpo-steps`` are done: ``OUT/grpo/model`` and ``OUT/grpo/grpo_log.json`` (the
  reward of each reward function, loss, KL, completion length per step). The prompts are the SFT train
  rows, or with ``--grpo-data-seed N`` the train rows of a fresh v2 generation (``OUT/grpo/data``) minus
  any sharing a context with the evaluated test split: SFT ends near loss 0 on its own rows, where sampled
  groups tend to get equal rewards, and a group whose rewards are all equal teaches GRPO nothing.
* ``grpo-select`` (with ``--grpo-prompts hard``; otherwise it does nothing): greedy replies of the SFT model to
  the first ``--select-rows`` GRPO prompts, scored by the gym, in resumable chunks -> ``OUT/grpo-select/
  selected.json``, the prompts whose reply scores below the gold reply; the grpo phase then trains on those
  alone. A prompt the SFT model already answers as well as the gold tends to get a group of equal rewards.
  Measured once (stop 14, ``benchmarks/results/dsa_recipe.md``): every group had a gradient, but the chosen
  prompts were 61 % declining golds and GRPO on them alone over-abstained (gym 40.20 -> 28.05).
* ``report``: ``OUT/summary.md`` (before SFT / after SFT / after GRPO / gold replies; the paired bootstrap
  interval of the gym-reward difference GRPO - SFT; rows and reward per rubric branch) and ``OUT/report.png``.

``--precision bf16``: SFT and GRPO run their matrix products in bfloat16 under CPU autocast (weights,
gradients and AdamW stay float32) and the evaluations generate with bfloat16 weights; on a CPU with AMX
that is ~1.5x (training) and ~2x (generation) faster (``benchmarks/bench_precision.py``). Without bfloat16
hardware (AVX-512 BF16 or AMX) it is far slower than float32 (a 2-core AVX2 EPYC: 39x per SFT step, 2.6x in
generation), so there the run exits 2 with one line before any work. A run keeps one precision: an SFT
checkpoint refuses to resume in the other.

``--gym-reward gold-aware``: GRPO's gym reward scores a reply that answers where the gold reply abstains or names
a conflict -5 (the gym has no check for it and scores such an answer up to +50, above the right abstention's
+30: GRPO on the raw rubric pays the model to invent a missing fact); the report shows those rows per stage.

``--reward-weights S,P,G``: TRL's ``reward_weights`` for the strict-format, partial-format and gym rewards.
All three are computed and logged at every step whatever their weights; ``0,0,1`` trains on the gym rubric
alone (it already scores a reply without the three tags -50, its worst outcome).

Commands, versions, machine and wall time per phase are recorded as in ``format_learning.py``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _format_learning():
    """``benchmarks/format_learning.py`` as a module (its SFT loop, evaluation call, tables, bootstrap)."""
    spec = importlib.util.spec_from_file_location("format_learning", ROOT / "benchmarks" / "format_learning.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FL = _format_learning()

PHASES = ("data", "sft", "eval-base", "eval-sft", "grpo-select", "grpo", "eval-grpo", "report")
# (label, evaluation folder) of the report's columns, in order.
STAGES = (("before SFT (base)", "eval-base"), ("after SFT", "eval-sft"), ("after GRPO", "eval-grpo"))
GRPO_DONE = "grpo_log.json"
SELECT_DONE = "selected.json"
# --gym-reward -> adapters.rewards kind: the gym's rubric as it is, or with an answer where the gold reply
# declines (abstains, or names a conflict) scored -5 instead of the gym's up to +50.
GYM_REWARD_KINDS = {"rubric": "gym", "gold-aware": "gym-gold-aware"}
GYM_REWARD_SCALE = 0.02  # as the DSA TRL notebooks (adapters/cells/trl_rewards.py): the gym's -50..50 -> -1..1


# ---------------------------------------------------------------------------------------------
# data


def dataset_path(args) -> Path:
    """The dataset every phase reads: ``--dataset`` or the one the data phase writes."""
    return Path(args.dataset) if args.dataset else args.out / "data" / "dipg"


def make_data(args, out: Path, seed: int | None = None) -> dict:
    """v2 rows (``seed``, default ``--data-seed``) -> ``out/rows.jsonl`` -> upstream split -> ``out/dipg``;
    returns the row counts."""
    seed = args.data_seed if seed is None else seed
    rows = out / "rows.jsonl"
    script = ROOT / "scripts"
    for command in (
        [sys.executable, str(script / "make_dipg_dataset.py"), "--generator", "v2", "--rows", str(args.rows),
         "--seed", str(seed), "--out", str(rows), "--force"],
        [sys.executable, str(script / "prepare_dataset.py"), str(rows), "--out", str(out / "dipg"), "--force"],
    ):
        print("+", " ".join(command), flush=True)
        subprocess.run(command, check=True)
    counts = {split: sum(1 for line in (out / "dipg" / f"{split}.jsonl").read_text().splitlines() if line.strip())
              for split in ("train", "test")}
    info = {"generator": "v2", "rows": args.rows, "seed": seed, **counts}
    (out / "data.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return info


# ---------------------------------------------------------------------------------------------
# sft and evaluation (format_learning's own code)


def sft_args(args) -> SimpleNamespace:
    """The namespace ``format_learning.train`` / ``evaluate`` read."""
    return SimpleNamespace(
        model=args.model, dataset=str(dataset_path(args)), train_rows=args.train_rows, max_length=args.max_length,
        steps=args.steps, grad_accum=args.grad_accum, lr=args.lr, warmup=args.warmup, seed=args.seed,
        eval_rows=args.eval_rows, max_new_tokens=args.max_new_tokens, eval_batch_size=args.eval_batch_size,
        precision=args.precision,
    )


# ---------------------------------------------------------------------------------------------
# grpo


def grpo_rows(dataset: Path, tokenizer, max_prompt_length: int) -> tuple[list[dict], int]:
    """Train rows -> GRPO rows ``{"prompt": [user turn], "context", "question", "answer"}`` and the count dropped.

    The prompt is the row's user turn alone, as SFT trained and ``eval_simple.py`` evaluates (no system
    prompt, no pre-fill); ``answer`` is the whole gold reply (the gym's ground truth). Prompts longer than
    ``max_prompt_length`` tokens are dropped, never cut.
    """
    from adapters.chat import render_prompt
    from adapters.dataset import load_splits
    from adapters.gym_scorer import split_user_content

    out, dropped = [], 0
    for row in load_splits(str(dataset))["train"]:
        user = next(m for m in row["messages"] if m["role"] == "user")
        gold = [m for m in row["messages"] if m["role"] == "assistant"][-1]["content"]
        prompt = [{"role": "user", "content": user["content"]}]
        if len(tokenizer(render_prompt(prompt), add_special_tokens=False)["input_ids"]) > max_prompt_length:
            dropped += 1
            continue
        context, question = split_user_content(user["content"])
        out.append({"prompt": prompt, "context": context, "question": question, "answer": gold,
                    "type": row["metadata"]["type"], "id": row["metadata"]["id"]})
    return out, dropped


def without_test_contexts(rows: list[dict], dataset: Path) -> tuple[list[dict], int]:
    """GRPO rows -> those whose context is no test row's context, and how many were removed.

    Prompts drawn from a second generation (``--grpo-data-seed``) may repeat a context of the evaluated test
    split; training on it would score the evaluation on a seen context.
    """
    from adapters.dataset import load_splits
    from adapters.gym_scorer import split_user_content

    test = {split_user_content(next(m for m in row["messages"] if m["role"] == "user")["content"])[0]
            for row in load_splits(str(dataset))["test"]}
    kept = [row for row in rows if row["context"] not in test]
    return kept, len(rows) - len(kept)


def grpo_pool_dataset(args, out: Path) -> Path:
    """The dataset whose train split the GRPO prompts come from (``out`` is the grpo phase's folder)."""
    return dataset_path(args) if args.grpo_data_seed is None else out / "data" / "dipg"


def grpo_prompt_rows(args, out: Path, tokenizer) -> tuple[list[dict], dict]:
    """The GRPO prompts and where they come from.

    Default: the SFT train split. With ``--grpo-data-seed N``: the train split of a fresh v2 generation
    (seed N, written once to ``out/data``) minus rows sharing a context with the evaluated test split. SFT ends
    near loss 0 on its own rows, where sampled groups tend to get equal rewards (no advantage); prompts it
    never saw are meant to keep the groups apart (not compared side by side: benchmarks/results/dsa_recipe.md).
    """
    if args.grpo_data_seed is None:
        rows, dropped = grpo_rows(dataset_path(args), tokenizer, args.max_prompt_length)
        return rows, {"source": "sft train split", "dropped_over_max_length": dropped,
                      "removed_sharing_a_test_context": 0}
    FL.phase("grpo data", out / "data", "data.json", lambda: make_data(args, out / "data", args.grpo_data_seed))
    rows, dropped = grpo_rows(grpo_pool_dataset(args, out), tokenizer, args.max_prompt_length)
    rows, removed = without_test_contexts(rows, dataset_path(args))
    return rows, {"source": f"fresh v2 generation, seed {args.grpo_data_seed}", "dropped_over_max_length": dropped,
                  "removed_sharing_a_test_context": removed}


def select_hard_prompts(args, model: Path, grpo_out: Path, out: Path) -> bool:
    """Greedy replies of ``model`` (the SFT weights) to the first ``--select-rows`` GRPO prompts, scored by the gym
    -> ``out/selected.json``: the ids of the prompts whose reply scores below the gold reply. ``True`` when done.

    A prompt the SFT model already answers as well as the gold tends to get 8 equal rewards in a GRPO group,
    which teach nothing (stop 13: 13 of 22 steps); these are the prompts it still gets wrong. The prompts go
    through ``scripts/eval_simple.py`` in chunks of ``--select-chunk`` rows (``out/chunk-NNN``, each written whole
    or not at all): an invocation stops before a chunk that would run past ``--select-max-minutes``, and the next
    one goes on from the first unfinished chunk.
    """
    from transformers import AutoTokenizer

    from adapters.dataset import load_splits, save_splits, to_dataset_dict

    start = time.time()
    rows, source = grpo_prompt_rows(args, grpo_out, AutoTokenizer.from_pretrained(str(model)))
    wanted = [row["id"] for row in rows[: args.select_rows]]
    by_id = {row["metadata"]["id"]: row for row in load_splits(str(grpo_pool_dataset(args, grpo_out)))["train"]}
    pool = [by_id[i] for i in wanted]
    chunks = [pool[i: i + args.select_chunk] for i in range(0, len(pool), args.select_chunk)]
    spent = []  # seconds of each chunk evaluated in this invocation
    for number, chunk in enumerate(chunks):
        folder = out / f"chunk-{number:03d}"
        if (folder / "eval" / "metrics.json").exists():
            continue
        elapsed = time.time() - start
        if spent and elapsed + max(spent) > 60 * args.select_max_minutes:
            print(f"grpo-select: {number}/{len(chunks)} chunks done; run the grpo-select phase again to go on",
                  flush=True)
            return False
        began = time.time()
        save_splits(to_dataset_dict(chunk, chunk), folder / "data", force=True)
        FL.evaluate(SimpleNamespace(**{**vars(sft_args(args)), "dataset": str(folder / "data"),
                                       "eval_rows": len(chunk)}), model, folder / "eval")
        spent.append(time.time() - began)
    results = [r for number in range(len(chunks)) for r in read_results(out / f"chunk-{number:03d}" / "eval")]
    hard = hard_results(results, args.gym_reward)
    selected = {
        "evaluated": len(results), "hard": len(hard), "hard_ids": [r["id"] for r in hard],
        "rule": f"greedy reply's reward (--gym-reward {args.gym_reward}) below the gold reply's gym reward",
        "hard_by_type": {t: sum(1 for r in hard if r["type"] == t) for t in sorted({r["type"] for r in results})},
        "hard_by_branch": {b: sum(1 for r in hard if r["gym"]["branch"] == b) for b in sorted({r["gym"]["branch"] for r in hard})},
        "prompt_source": source["source"], "model": str(model),
    }
    (out / SELECT_DONE).write_text(json.dumps(selected, indent=1, sort_keys=True) + "\n")
    return True


def row_reward(result: dict, gym_reward: str = "rubric") -> float:
    """One ``eval_simple.py`` result row -> its reward under ``--gym-reward`` (the gym's, or gold-aware)."""
    if gym_reward == "rubric":
        return result["gym"]["reward"]
    from adapters.gym_scorer import gold_aware_reward

    return gold_aware_reward(result["gym"]["reward"], result["gym"]["branch"], result["gold_gym"]["branch"])


def hard_results(results: list[dict], gym_reward: str = "rubric") -> list[dict]:
    """``eval_simple.py`` result rows -> those whose reply scores below the gold reply (under ``gym_reward``)."""
    return [r for r in results if row_reward(r, gym_reward) < r["gold_gym"]["reward"]]


def only_selected(rows: list[dict], selected: Path) -> list[dict]:
    """GRPO rows -> those the grpo-select phase chose (``selected.json``), in their order."""
    chosen = set(json.loads(selected.read_text())["hard_ids"])
    return [row for row in rows if row["id"] in chosen]


REWARD_NAMES = ("strict", "partial", "gym")  # the order of adapters.rewards.trl_rewards


def parse_reward_weights(text: str) -> list[float]:
    """``"1,1,1"`` -> ``[1.0, 1.0, 1.0]``: one weight per reward of :data:`REWARD_NAMES`, in that order.

    Raises ``ValueError`` (one line) unless there are three finite, non-negative weights, not all zero.
    """
    import math

    parts = [p.strip() for p in text.split(",")]
    try:
        weights = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"--reward-weights {text!r}: not numbers") from None
    if len(weights) != len(REWARD_NAMES):
        raise ValueError(f"--reward-weights {text!r}: give {len(REWARD_NAMES)} weights ({', '.join(REWARD_NAMES)})")
    if any(not math.isfinite(w) or w < 0 for w in weights) or not any(weights):
        raise ValueError(f"--reward-weights {text!r}: weights must be finite, >= 0 and not all 0")
    return weights


def latest_checkpoint(folder: Path) -> Path | None:
    """The ``checkpoint-N`` folder under ``folder`` with the largest ``N`` (``None`` if there is none)."""
    found = [p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()] if folder.exists() else []
    return max(found, key=lambda p: int(p.name.split("-")[-1])) if found else None


def _stop_callback(max_seconds: float, max_steps_per_call: int | None, clock=time.time, save: bool = True):
    """A ``TrainerCallback`` that saves a checkpoint and stops before the wall-time budget runs out.

    It stops after ``max_steps_per_call`` steps of this invocation, or when one more step (the slowest
    seen so far, plus a checkpoint's worth of margin) would end past ``max_seconds`` of wall time.
    ``clock``: seconds now (tests pass a fake one). ``save=False``: stop without a checkpoint (the
    caller ends the phase there).
    """
    from transformers import TrainerCallback

    class StopInTime(TrainerCallback):
        def __init__(self):
            self.start = clock()
            self.last = self.start
            self.slowest = 0.0
            self.steps = 0
            self.stopped_early = False
            self.cpu_start = 0.0
            self.cpu_seconds = []  # CPU time of each step, all threads: a figure the machine's other load barely moves

        def on_step_begin(self, args, state, control, **kwargs):
            self.cpu_start = time.process_time()

        def on_step_end(self, args, state, control, **kwargs):
            self.cpu_seconds.append(round(time.process_time() - self.cpu_start, 1))
            now = clock()
            self.slowest = max(self.slowest, now - self.last)
            self.last = now
            self.steps += 1
            if state.global_step >= state.max_steps:
                return control
            out_of_steps = max_steps_per_call is not None and self.steps >= max_steps_per_call
            out_of_time = (now - self.start) + 1.5 * self.slowest > max_seconds
            if out_of_steps or out_of_time:
                self.stopped_early = True
                control.should_save = save
                control.should_training_stop = True
            return control

    return StopInTime()


def score_completions_only() -> None:
    """Make TRL 1.16's fused LM head score only the completion positions on a CPU, as it does on CUDA.

    ``GRPOTrainer`` computes each completion token's log-probability with a chunked LM-head kernel
    (``trl.trainer.utils.add_fused_lm_head``). On a Triton device it first keeps the positions whose label
    is not -100 (the completion); elsewhere it runs the 262k-word head over *every* position, prompt
    included, and zeroes the prompt's results afterwards: with ~1k-token DIPG prompts and ~300-token
    completions that is ~4x the head's work, forward and backward. The selection (``hidden[mask]``) is
    plain indexing, fine in eager PyTorch on any device; only the decision is patched, not the kernel
    choice (``trl.kernels.chunked_logprob`` keeps its own ``_use_triton``).
    """
    import trl.trainer.utils as trl_utils

    original = trl_utils._use_triton
    if getattr(original, "dsa_patched", False):
        return

    def compact_everywhere(device):
        return True

    compact_everywhere.dsa_patched = True
    compact_everywhere.original = original
    trl_utils._use_triton = compact_everywhere


def grpo_log(log_history: list[dict], invocations: list[dict]) -> dict:
    """``trainer.state.log_history`` -> one list per logged quantity, aligned with ``steps``.

    Keeps the mean reward, each reward function's mean and std (``rewards/<name>/mean``), the loss, the
    KL to the reference (when ``beta > 0``), the completion lengths, the clipped share and the step time.
    """
    history = [entry for entry in log_history if "reward" in entry and "step" in entry]
    keys = sorted({key for entry in history for key in entry
                   if key in ("reward", "reward_std", "frac_reward_zero_std", "loss", "kl", "learning_rate",
                              "grad_norm", "step_time", "entropy", "clip_ratio/region_mean")
                   or key.startswith(("rewards/", "completions/"))})
    log = {"steps": [entry["step"] for entry in history]}
    log.update({key: [entry.get(key) for entry in history] for key in keys})
    log["invocations"] = invocations
    return log


EQUAL_REWARDS_STD = 1e-6  # a group std below this is float32 rounding of equal rewards, not a difference


def equal_reward_groups(log: dict) -> tuple[int, int, int] | None:
    """A one-prompt-per-step GRPO log -> (steps whose group rewards were all equal, of those the ones TRL's
    ``frac_reward_zero_std`` counts, steps); ``None`` when a step holds several groups (``reward_std`` is then
    their mean and cannot tell).

    A group of equal rewards has no advantage, so its step trains on nothing. TRL decides "zero std" with
    ``torch.isclose(std, 0)`` (atol 1e-8), but eight float32 rewards of 0.6 (the gym's +30 x 0.02) have a std of
    6.4e-8: counted as a group with signal.
    """
    if log.get("prompts_per_step") != 1 or "reward_std" not in log:
        return None
    pairs = [(std, zero) for std, zero in zip(log["reward_std"], log.get("frac_reward_zero_std", [])) if std is not None]
    equal = [zero for std, zero in pairs if std < EQUAL_REWARDS_STD]
    return len(equal), sum(1 for zero in equal if zero == 1.0), len(pairs)


def train_grpo(args, init: Path, out: Path) -> bool:
    """One bounded GRPO invocation from ``init`` (SFT weights) -> ``True`` when every step is done.

    Shapes: each optimizer step takes ``--grpo-prompts-per-step`` prompts x ``--num-generations`` sampled
    completions of at most ``--max-completion-length`` tokens; advantages are the rewards normalised in
    each prompt's group (TRL's default). The tied embedding stays frozen, as in SFT.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from trl import GRPOConfig, GRPOTrainer
    from datasets import Dataset

    from adapters.rewards import trl_rewards

    start = time.time()
    score_completions_only()
    checkpoints = out / "checkpoints"
    resume = latest_checkpoint(checkpoints)
    set_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(str(init))
    selected = args.out / "grpo-select" / SELECT_DONE
    if args.grpo_prompts == "hard" and not selected.exists():
        print(f"error: --grpo-prompts hard needs the grpo-select phase's {selected}", file=sys.stderr)
        raise SystemExit(2)
    rows, source = grpo_prompt_rows(args, out, tokenizer)
    dropped = source["dropped_over_max_length"]
    if args.grpo_prompts == "hard":
        evaluated = json.loads(selected.read_text())["evaluated"]
        rows = only_selected(rows, selected)
        source["selected"] = f"{len(rows)} of {evaluated} evaluated whose greedy SFT reply scored below the gold reply"
    if not rows:
        print(f"error: no GRPO prompt left (--max-prompt-length {args.max_prompt_length}, --grpo-prompts "
              f"{args.grpo_prompts})", file=sys.stderr)
        raise SystemExit(2)
    model = AutoModelForCausalLM.from_pretrained(str(init), dtype=torch.float32)
    model.get_input_embeddings().weight.requires_grad_(False)
    generations = args.num_generations
    config = GRPOConfig(
        output_dir=str(checkpoints),
        use_cpu=True,
        bf16=args.precision == "bf16",  # CPU autocast in the loss; the weights and AdamW stay float32
        max_steps=args.grpo_steps,
        per_device_train_batch_size=generations * args.grpo_prompts_per_step,
        gradient_accumulation_steps=1,
        num_generations=generations,
        max_completion_length=args.max_completion_length,
        temperature=args.temperature,
        learning_rate=args.grpo_lr,
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=args.grpo_warmup,
        beta=args.beta,
        # Every reward is computed and logged; the weights decide which ones make the advantage.
        reward_weights=parse_reward_weights(args.reward_weights),
        max_grad_norm=1.0,
        logging_steps=1,
        save_strategy="no",  # checkpoints only when an invocation stops early (the stop callback)
        report_to="none",
        seed=args.seed,
        data_seed=args.seed,
        disable_dropout=True,
        gradient_checkpointing=False,  # TRL turns it on by default: on a CPU with memory to spare it only costs time
        dataloader_num_workers=0,
    )
    stop = _stop_callback(60 * args.grpo_max_minutes - (time.time() - start), args.grpo_steps_per_call,
                          save=not args.grpo_until_budget)
    rewards = trl_rewards(gym_scale=GYM_REWARD_SCALE, gym_kind=GYM_REWARD_KINDS[args.gym_reward])
    trainer = GRPOTrainer(model=model, processing_class=tokenizer, reward_funcs=rewards,
                          args=config, train_dataset=Dataset.from_list(rows), callbacks=[stop])
    print(f"GRPO: {len(rows)} prompts from the {source['source']} ({dropped} over {args.max_prompt_length} "
          f"tokens dropped, {source['removed_sharing_a_test_context']} sharing a test context removed"
          + (f"; {source['selected']}" if "selected" in source else "") + "), "
          + (f"resuming from {resume}" if resume else "from " + str(init)), flush=True)
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    steps = trainer.state.global_step
    # --grpo-until-budget: the budget, not --grpo-steps, ends the phase (one invocation, as many steps as fit).
    done = steps >= args.grpo_steps or (args.grpo_until_budget and stop.stopped_early)
    invocations_path = out / "invocations.json"
    invocations = json.loads(invocations_path.read_text()) if invocations_path.exists() else []
    invocations.append({"from_step": int(resume.name.split("-")[-1]) if resume else 0, "to_step": steps,
                        "seconds": round(time.time() - start, 1), "step_cpu_seconds": stop.cpu_seconds})
    invocations_path.write_text(json.dumps(invocations, indent=2) + "\n")
    if not done:
        # Keep only the checkpoint just written: the next invocation resumes from it.
        for old in checkpoints.glob("checkpoint-*"):
            if old != latest_checkpoint(checkpoints):
                shutil.rmtree(old, ignore_errors=True)
        print(f"GRPO: stopped at step {steps}/{args.grpo_steps}; run the grpo phase again to resume", flush=True)
        return False
    trainer.save_model(str(out / "model"))
    tokenizer.save_pretrained(str(out / "model"))
    log = grpo_log(trainer.state.log_history, invocations)
    log.update({"prompts": len(rows), "prompts_dropped_over_max_length": dropped, "prompt_source": source,
                "num_generations": generations,
                "prompts_per_step": args.grpo_prompts_per_step, "max_completion_length": args.max_completion_length,
                "beta": args.beta, "learning_rate": args.grpo_lr, "gym_reward": args.gym_reward, "temperature": args.temperature,
                "gym_scale": GYM_REWARD_SCALE, "total_steps": steps, "init": str(init), "precision": args.precision,
                "reward_weights": dict(zip(REWARD_NAMES, parse_reward_weights(args.reward_weights))),
                "ended_by_budget": bool(stop.stopped_early)})
    (out / GRPO_DONE).write_text(json.dumps(log, indent=1, sort_keys=True) + "\n")
    (out / "seconds.txt").write_text(f"{sum(i['seconds'] for i in invocations):.0f}\n")
    shutil.rmtree(checkpoints, ignore_errors=True)
    return True


# ---------------------------------------------------------------------------------------------
# report


REPORT_ROWS = (
    ("strict format", ("overall", "strict_format_rate"), True),
    ("`<think>` present", ("overall", "tag_presence", "think"), True),
    ("`<proof>` present", ("overall", "tag_presence", "proof"), True),
    ("`<answer>` present", ("overall", "tag_presence", "answer"), True),
    ("proofs quoting the context verbatim", ("overall", "proof_grounding_share"), True),
    ("gym mean reward", ("overall", "gym", "mean_reward"), False),
    ("gym safe", ("overall", "gym", "safe_rate"), True),
    ("gym hallucination", ("overall", "gym", "hallucination_rate"), True),
    ("gym refusal", ("overall", "gym", "refusal_rate"), True),
)


def read_results(eval_dir: Path) -> list[dict]:
    """``results.jsonl`` of an ``eval_simple.py`` run, one dict per test row."""
    return [json.loads(line) for line in (eval_dir / "results.jsonl").read_text().splitlines() if line.strip()]


def branch_table(results: list[dict], key: str = "gym") -> dict[str, dict]:
    """Per-row results -> ``{branch: {"rows", "reward"}}``: rows decided by each rubric branch and the share
    of the mean gym reward they bring (their rewards summed / all rows: the shares add up to the mean)."""
    n = len(results)
    table: dict[str, dict] = {}
    for row in results:
        block = table.setdefault(row[key]["branch"], {"rows": 0, "reward": 0.0})
        block["rows"] += 1
        block["reward"] += row[key]["reward"] / n
    return table


def type_table(columns: dict[str, dict], gold: dict) -> list[str]:
    """Markdown lines: gym mean reward per row type, one column per stage plus the gold
    replies; ``columns``: ``{stage label: metrics.json}``, ``gold``: their ``gold`` block (``by_type``:
    ``{type: gym summary}``)."""
    types = sorted(gold["by_type"])
    lines = ["Gym mean reward by row type:", "",
             "| row type | rows | " + " | ".join(columns) + " | gold replies |", "|---" * (len(columns) + 3) + "|"]
    for kind in types:
        cells = []
        for metrics in columns.values():
            block = metrics["by_type"].get(kind)
            cells.append(f"{block['gym']['mean_reward']:.2f}" if block else "-")
        rows = next(m["by_type"][kind]["n"] for m in columns.values() if kind in m["by_type"])
        lines.append(f"| {kind} | {rows} | " + " | ".join(cells) + f" | {gold['by_type'][kind]['mean_reward']:.2f} |")
    return lines + [""]


def stage_results(out: Path) -> dict[str, list[dict]]:
    """``{stage label: per-row results}`` of the evaluations that finished, plus the gold replies."""
    stages = {label: read_results(out / folder) for label, folder in STAGES if (out / folder / "results.jsonl").exists()}
    if stages:
        first = next(iter(stages.values()))
        stages["gold replies"] = [{"gym": row["gold_gym"]} for row in first]
    return stages


def declined_lines(stages: dict[str, list[dict]]) -> list[str]:
    """The rows a reply answers where the gold reply declines (abstains or names a conflict), per stage, the gym
    mean with them scored -5 (``--gym-reward gold-aware``), and its paired difference GRPO - SFT."""
    from adapters.gym_scorer import missed_decline

    graded = {label: [(row, row_reward(row, "gold-aware") if "gold_gym" in row else row["gym"]["reward"])
                      for row in results] for label, results in stages.items()}
    missed = {label: [row for row in results if "gold_gym" in row
                      and missed_decline(row["gym"]["branch"], row["gold_gym"]["branch"])] for label, results in stages.items()}
    lines = ["Replies that answer where the gold reply abstains (a missing fact) or names a conflict: the gym has no "
             "check for them and scores them as answers, up to +50, above the right abstention's +30. The gold-aware "
             "reward scores them -5, as the gym scores an abstention where the gold answers:", "",
             "| gold-aware | " + " | ".join(stages) + " |", "|---" * (len(stages) + 1) + "|",
             "| rows answered where the gold declines | " + " | ".join(str(len(rows)) for rows in missed.values()) + " |",
             "| of them scored +50 (answer_correct) | "
             + " | ".join(str(sum(r["gym"]["branch"] == "answer_correct" for r in rows)) for rows in missed.values()) + " |",
             "| gym mean reward over all rows, these scored -5 | "
             + " | ".join(f"{sum(x for _, x in rows) / len(rows):.2f}" if rows else "-" for rows in graded.values()) + " |",
             ""]
    if "after GRPO" in stages and "after SFT" in stages:
        as_dict = {label: {row["index"]: x for row, x in graded[label]} for label in ("after GRPO", "after SFT")}
        d = FL.paired_difference(as_dict["after GRPO"], as_dict["after SFT"])
        lines += [f"Gold-aware reward, after GRPO - after SFT, paired by test row: {d['mean']:+.2f} "
                  f"[{d['low']:+.2f}, {d['high']:+.2f}] ({d['better']} better / {d['worse']} worse).", ""]
    return lines


def write_plot(branches: dict[str, dict[str, dict]], path: Path) -> None:
    """Rows and reward per rubric branch, one bar per stage -> ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from adapters.gym_scorer import BRANCHES

    names = [b for b in BRANCHES if any(b in table for table in branches.values())]
    figure, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    width = 0.8 / max(1, len(branches))
    for panel, (what, title) in zip(axes, (("rows", "rows decided by each rubric branch"),
                                            ("reward", "share of the mean gym reward per branch"))):
        for index, (label, table) in enumerate(branches.items()):
            values = [table.get(name, {}).get(what, 0) for name in names]
            panel.bar([x + index * width for x in range(len(names))], values, width, label=label)
        panel.set_xticks([x + width * (len(branches) - 1) / 2 for x in range(len(names))])
        panel.set_xticklabels([n.replace("_", "\n") for n in names], fontsize=8)
        panel.set_title(title)
        panel.axhline(0, color="black", linewidth=0.5)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    figure.savefig(tmp, dpi=110)
    plt.close(figure)
    os.replace(tmp, path)


def write_report(args, out: Path) -> Path:
    """Gather the evaluations, training logs and wall times into ``out/summary.md`` and ``out/report.png``."""
    columns = {label: json.loads((out / folder / "metrics.json").read_text())
               for label, folder in STAGES if (out / folder / "metrics.json").exists()}
    if not columns:
        print(f"error: {out}: no evaluation has finished (run an eval-* phase first)", file=sys.stderr)
        raise SystemExit(2)
    gold = next(iter(columns.values()))["gold"]
    env = FL.environment()
    import trl

    # The settings the phases ran with (the last recorded config), not this invocation's defaults.
    config = json.loads((out / "config.json").read_text()) if (out / "config.json").exists() else {}
    model_name = Path(config.get("model", args.model)).name
    max_new_tokens = config.get("max_new_tokens", args.max_new_tokens)
    base_max_new_tokens = config.get("base_max_new_tokens", "None")
    lines = [f"# The DSA recipe: data -> SFT -> GRPO on {model_name} (CPU)", "", "Commands, in order:", ""]
    lines += [f"    {command}" for command in FL.recorded_commands(out)] + [""]
    lines += [f"Machine: {env['machine']}; Python {env['python']}, torch {env['torch']}, "
              f"transformers {env['transformers']}, trl {trl.__version__}.", ""]
    data_info = out / "data" / "data.json"
    if data_info.exists():
        info = json.loads(data_info.read_text())
        lines += [f"Data: offline generator {info['generator']}, {info['rows']} rows (seed {info['seed']}): "
                  f"{info['train']} train, {info['test']} test.", ""]
    n = sorted({m["n"] for m in columns.values()})
    lines += [f"Evaluated on the first {'/'.join(map(str, n))} test rows, greedy, max {max_new_tokens} new tokens"
              + (f" (the base model: max {base_max_new_tokens})." if base_max_new_tokens not in ("None", None) else "."),
              ""]
    lines.append(FL.summary_markdown(columns, gold, rows=REPORT_ROWS, failures=False))
    lines += type_table(columns, gold)
    stages = stage_results(out)
    branches = {label: branch_table(results) for label, results in stages.items()}
    names = [b for b in __import__("adapters.gym_scorer", fromlist=["BRANCHES"]).BRANCHES
             if any(b in table for table in branches.values())]
    lines += ["Rows decided by each rubric branch (share of the mean gym reward they bring):", "",
              "| branch | " + " | ".join(branches) + " |", "|---" * (len(branches) + 1) + "|"]
    for name in names:
        cells = [f"{t[name]['rows']} ({t[name]['reward']:+.2f})" if name in t else "0" for t in branches.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    pairs = [("after GRPO", "eval-grpo", "after SFT", "eval-sft"), ("after SFT", "eval-sft", "before SFT (base)", "eval-base")]
    diffs = [(a, b, FL.paired_difference(FL.row_rewards(out / pa), FL.row_rewards(out / pb)))
             for a, pa, b, pb in pairs if (out / pa / "results.jsonl").exists() and (out / pb / "results.jsonl").exists()]
    if diffs:
        lines += ["Gym reward difference, paired by test row (95 % bootstrap interval, 10,000 resamples, seed 0):", "",
                  "| difference | mean | 95 % interval | rows better / worse |", "|---|---|---|---|"]
        lines += [f"| {a} - {b} | {d['mean']:+.2f} | [{d['low']:+.2f}, {d['high']:+.2f}] | {d['better']} / {d['worse']} |"
                  for a, b, d in diffs]
        lines.append("")
    lines += declined_lines(stages)
    sft_log = out / "sft" / "train_log.json"
    if sft_log.exists():
        log = json.loads(sft_log.read_text())
        lines += [f"SFT: {log['rows']} rows ({', '.join(f'{k} {v}' for k, v in log['rows_by_type'].items())}), "
                  f"{log['dropped_over_max_length']} train rows dropped over max length {log['max_length']}; "
                  f"{log['steps']} steps x {log['grad_accum']} rows, lr {log['lr']}, loss {log['losses'][0]:.2f} -> "
                  f"{log['losses'][-1]:.2f}, {log['train_seconds']:.0f} s ({log['train_seconds'] / log['steps']:.1f} s/step).", ""]
    select_path = out / "grpo-select" / SELECT_DONE
    if select_path.exists():
        chosen = json.loads(select_path.read_text())
        lines += [f"GRPO prompts (grpo-select): {chosen['hard']} of the first {chosen['evaluated']} GRPO prompts, "
                  f"those whose greedy SFT reply scored below the gold reply; by type: "
                  + ", ".join(f"{k} {v}" for k, v in chosen["hard_by_type"].items())
                  + "; by the branch that scored the reply: "
                  + ", ".join(f"{k} {v}" for k, v in chosen["hard_by_branch"].items()) + ".", ""]
    grpo_path = out / "grpo" / GRPO_DONE
    if grpo_path.exists():
        log = json.loads(grpo_path.read_text())
        lines += [f"GRPO: {log['total_steps']} steps x {log['prompts_per_step']} prompt(s) x {log['num_generations']} "
                  f"completions (max {log['max_completion_length']} tokens), lr {log['learning_rate']}, beta {log['beta']}, "
                  f"temperature {log['temperature']}"
                  + ("; reward weights " + ", ".join(f"{k} {log['reward_weights'][k]:g}" for k in REWARD_NAMES)
                     if "reward_weights" in log else "")
                  + (f"; gym reward {log['gym_reward']}" if "gym_reward" in log else "")
                  + f"; {log['prompts']} prompts"
                  + (f" ({log['prompt_source']['source']}, {log['prompt_source']['removed_sharing_a_test_context']} "
                     "sharing a test context removed"
                     + (f"; {log['prompt_source']['selected']}" if "selected" in log["prompt_source"] else "")
                     + ")" if "prompt_source" in log else "")
                  + "; "
                  f"{len(log['invocations'])} invocation(s): "
                  + ", ".join(f"steps {i['from_step']}->{i['to_step']} in {i['seconds']:.0f} s" for i in log["invocations"])
                  + "."]
        walls = [t for t in log.get("step_time", []) if t is not None]
        cpus = [c for i in log["invocations"] for c in i.get("step_cpu_seconds", [])]
        lengths = [x for x in log.get("completions/mean_length", []) if x is not None]
        if walls and cpus and lengths:
            lines[-1] += (f" Per step: {sum(walls) / len(walls):.0f} s wall, {sum(cpus) / len(cpus):.0f} s CPU (all threads); "
                          f"completions {sum(lengths) / len(lengths):.0f} tokens on average.")
        equal = equal_reward_groups(log)
        if equal:
            lines[-1] += (f" Steps whose {log['num_generations']} rewards were all equal (group std < "
                          f"{EQUAL_REWARDS_STD:g}: no advantage, nothing learned): {equal[0]} of {equal[2]} "
                          f"(TRL's frac_reward_zero_std counts {equal[1]} of them).")
        lines.append("")
        # A reward whose std within the groups is 0 gives no advantage: it has saturated (or never fires).
        reward_keys = sorted(k for k in log if k.startswith("rewards/")) + [
            k for k in ("reward", "reward_std", "frac_reward_zero_std", "kl") if k in log]
        lines += ["GRPO rewards per step (mean over the step's completions, and their std; first quarter of the "
                  "steps vs last quarter):", "",
                  "| reward | first | last |", "|---|---|---|"]
        quarter = max(1, len(log["steps"]) // 4)
        for key in reward_keys:
            values = [v for v in log[key] if v is not None]
            if values:
                lines.append(f"| {key} | {sum(values[:quarter]) / len(values[:quarter]):.3f} | "
                             f"{sum(values[-quarter:]) / len(values[-quarter:]):.3f} |")
        lines.append("")
    lines += ["Wall time per phase (s): " + ", ".join(
        f"{d.name} {(d / 'seconds.txt').read_text().strip()}" for d in sorted(out.iterdir())
        if d.is_dir() and (d / "seconds.txt").exists())]
    write_plot(branches, out / "report.png")
    path = out / "summary.md"
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------------------------------------
# main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "runs/dsa_recipe")
    parser.add_argument("--phases", default=",".join(PHASES), help="comma-separated, from: " + ", ".join(PHASES))
    parser.add_argument("--model", default=str(ROOT / "models/gemma-3-270m"))
    parser.add_argument("--dataset", default=None, help="use this dataset instead of the data phase's v2 rows")
    parser.add_argument("--rows", type=int, default=1500, help="data: v2 rows generated (last 100 are the test split)")
    parser.add_argument("--data-seed", type=int, default=42)
    # sft
    parser.add_argument("--train-rows", type=int, default=320)
    parser.add_argument("--max-length", type=int, default=1536, help="rows longer than this are dropped, never cut")
    parser.add_argument("--steps", type=int, default=160)
    parser.add_argument("--grad-accum", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--sft-max-minutes", type=float, default=55.0,
                        help="wall-time budget of one sft invocation; the next one resumes from its checkpoint")
    # evaluation
    parser.add_argument("--eval-rows", type=int, default=100)
    parser.add_argument("--max-new-tokens", type=int, default=640,
                        help="v2 gold replies are up to 577 tokens (median 266): 384 would cut 18 %% of them")
    parser.add_argument("--eval-batch-size", type=int, default=10)
    parser.add_argument("--base-max-new-tokens", type=int, default=None,
                        help="cap of the base model's evaluation alone (default --max-new-tokens): the base never "
                             "writes the tags, and its untagged replies run to any cap, so a lower one saves the "
                             "most expensive evaluation")
    # grpo
    parser.add_argument("--grpo-init", type=Path, default=None, help="weights GRPO starts from (default OUT/sft/model)")
    parser.add_argument("--grpo-data-seed", type=int, default=None,
                        help="GRPO prompts from a fresh v2 generation with this seed (rows sharing a context with "
                             "the test split removed) instead of the SFT train rows")
    parser.add_argument("--grpo-prompts", choices=("all", "hard"), default="all",
                        help="hard: GRPO trains only on the prompts the grpo-select phase found the SFT model "
                             "answering below the gold reply (greedy, gym rubric)")
    parser.add_argument("--select-rows", type=int, default=400, help="grpo-select: GRPO prompts evaluated (the first N)")
    parser.add_argument("--select-chunk", type=int, default=40, help="grpo-select: prompts per resumable chunk")
    parser.add_argument("--select-max-minutes", type=float, default=55.0,
                        help="wall-time budget of one grpo-select invocation; the next one goes on from its chunks")
    parser.add_argument("--grpo-steps", type=int, default=40, help="total GRPO optimizer steps (over all invocations)")
    parser.add_argument("--grpo-max-minutes", type=float, default=55.0, help="wall-time budget of one grpo invocation")
    parser.add_argument("--grpo-steps-per-call", type=int, default=None, help="stop an invocation after this many steps")
    parser.add_argument("--grpo-until-budget", action="store_true",
                        help="one invocation: train until --grpo-max-minutes (or --grpo-steps) and end the phase there")
    parser.add_argument("--num-generations", type=int, default=4, help="GRPO group size (completions per prompt)")
    parser.add_argument("--grpo-prompts-per-step", type=int, default=1)
    parser.add_argument("--max-completion-length", type=int, default=384)
    parser.add_argument("--max-prompt-length", type=int, default=1536)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--grpo-lr", type=float, default=5e-6)
    parser.add_argument("--grpo-warmup", type=int, default=2)
    parser.add_argument("--reward-weights", default="1,1,1",
                        help="GRPO weights of the strict-format, partial-format and gym rewards (all three are "
                             "logged either way); e.g. 0,0,1: the gym rubric alone, which already scores a "
                             "format error -50, its worst outcome")
    parser.add_argument("--gym-reward", choices=tuple(GYM_REWARD_KINDS), default="rubric",
                        help="GRPO's gym reward: the rubric as it is, or gold-aware: an answer where the gold reply "
                             "abstains or names a conflict scores -5 (the gym scores it up to +50, above the right "
                             "abstention's +30)")
    parser.add_argument("--beta", type=float, default=0.0, help="KL coefficient (0: no reference model)")
    parser.add_argument("--precision", choices=FL.PRECISIONS, default="fp32",
                        help="bf16: SFT and GRPO under CPU autocast (float32 weights and optimizer), evaluations "
                        "with bfloat16 weights; needs AVX-512 BF16 or AMX (refused without); fp32 (default): "
                        "float32 throughout")
    parser.add_argument("--seed", type=int, default=42)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    phases = [p for p in args.phases.split(",") if p]
    unknown = sorted(set(phases) - set(PHASES))
    if unknown:
        print(f"error: unknown phase(s) {', '.join(unknown)}; choose from {', '.join(PHASES)}", file=sys.stderr)
        return 2
    try:
        parse_reward_weights(args.reward_weights)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if set(phases) - {"data", "report"}:
        from adapters.training import PrecisionError

        try:
            FL.require_native_precision(args.precision)
        except PrecisionError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exc.exit_code
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    if set(phases) - {"report"}:
        (out / "config.json").write_text(json.dumps({k: str(v) for k, v in vars(args).items()}, indent=2,
                                                    sort_keys=True) + "\n")
        command = " ".join(["python benchmarks/dsa_recipe.py", *(sys.argv[1:] if argv is None else argv)])
        with open(out / "commands.txt", "a", encoding="utf-8") as commands:
            commands.write(command + "\n")
    fl = sft_args(args)
    sft_dir, grpo_dir = out / "sft", out / "grpo"
    if "data" in phases:
        if args.dataset:
            print(f"data: using {args.dataset}", flush=True)
        else:
            FL.phase("data", out / "data", "data.json", lambda: make_data(args, out / "data"))
    if "sft" in phases:
        if (sft_dir / "train_log.json").exists():
            print(f"sft: done already ({sft_dir})", flush=True)
        else:
            sft_dir.mkdir(parents=True, exist_ok=True)
            start = time.time()
            if FL.train(fl, "reply", sft_dir, max_seconds=60 * args.sft_max_minutes) is None:
                return 0  # the budget ran out: later phases need the finished SFT model
            log = json.loads((sft_dir / "train_log.json").read_text())
            (sft_dir / "seconds.txt").write_text(f"{log['train_seconds']:.0f}\n")
            print(f"sft: {time.time() - start:.0f} s in this invocation", flush=True)
    if "eval-base" in phases:
        base = SimpleNamespace(**{**vars(fl), "max_new_tokens": args.base_max_new_tokens or args.max_new_tokens})
        FL.phase("eval base", out / "eval-base", "metrics.json",
                 lambda: FL.evaluate(base, Path(args.model), out / "eval-base"))
    if "eval-sft" in phases:
        FL.phase("eval sft", out / "eval-sft", "metrics.json", lambda: FL.evaluate(fl, sft_dir / "model", out / "eval-sft"))
    if "grpo-select" in phases:
        select_dir = out / "grpo-select"
        if args.grpo_prompts != "hard":
            print("grpo-select: nothing to do (--grpo-prompts all)", flush=True)
        elif (select_dir / SELECT_DONE).exists():
            print(f"grpo-select: done already ({select_dir})", flush=True)
        else:
            select_dir.mkdir(parents=True, exist_ok=True)
            start = time.time()
            finished = select_hard_prompts(args, args.grpo_init or sft_dir / "model", grpo_dir, select_dir)
            seconds_file = select_dir / "seconds.txt"
            before = float(seconds_file.read_text()) if seconds_file.exists() else 0.0
            seconds_file.write_text(f"{before + time.time() - start:.0f}\n")
            if not finished:
                return 0  # the budget ran out: GRPO needs the whole selection
    if "grpo" in phases:
        if (grpo_dir / GRPO_DONE).exists():
            print(f"grpo: done already ({grpo_dir})", flush=True)
        else:
            grpo_dir.mkdir(parents=True, exist_ok=True)
            if not train_grpo(args, args.grpo_init or sft_dir / "model", grpo_dir):
                return 0  # the budget ran out: later phases need the finished GRPO model
    if "eval-grpo" in phases:
        FL.phase("eval grpo", out / "eval-grpo", "metrics.json",
                 lambda: FL.evaluate(fl, grpo_dir / "model", out / "eval-grpo"))
    if "report" in phases:
        print("summary:", write_report(args, out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
