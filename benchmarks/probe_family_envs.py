"""Scratch proof that each family environment trains Gemma-3 on CPU (issue 5, step 2). Not a test.

Run with the family's own interpreter, against the tiny offline model:
    .venv-tunix/bin/python benchmarks/probe_family_envs.py tunix --model models/tiny-gemma3
    .venv-unsloth/bin/python benchmarks/probe_family_envs.py unsloth --model models/tiny-gemma3
Each prints one line per stage with its wall time and the losses/rewards it saw, then a JSON summary.
The API calls here are the ones the patcher's DSA cells for Unsloth/Tunix must use.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

USER = (
    "<context>\nThe median overall survival in DIPG is 11 months.\n</context>\n\n"
    "<question>\nWhat is the median overall survival?\n</question>"
)
REPLY = (
    "<think>\nThe context states the median survival.\n</think>\n\n"
    "<proof>\nThe median overall survival in DIPG is 11 months.\n</proof>\n\n"
    "<answer>\n11 months\n</answer>"
)


def _stage(summary: dict, name: str, t0: float, **facts) -> None:
    summary[name] = {"wall_s": round(time.perf_counter() - t0, 2), **facts}
    print(f"[{name}] {json.dumps(summary[name])}", flush=True)


def _format_reward(completion: str) -> float:
    """1.0 when all three closing tags appear in order, else 0.0 (enough to exercise the plumbing)."""
    i = completion.find("</think>")
    j = completion.find("</proof>", i + 1) if i >= 0 else -1
    return 1.0 if j >= 0 and completion.find("</answer>", j + 1) >= 0 else 0.0


# ----------------------------------------------------------------------------------- Tunix
def probe_tunix(model_dir: str, steps: int) -> dict:
    """Tunix 0.1.7 on CPU: safetensors -> nnx Gemma3, PeftTrainer SFT, then GRPOLearner via RLCluster."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from transformers import AutoTokenizer
    from tunix.generate import tokenizer_adapter as tokenizer_lib
    from tunix.models.gemma3 import model as gemma3_lib
    from tunix.models.gemma3 import params_safetensors as params_safetensors_lib
    from tunix.rl import rl_cluster as rl_cluster_lib
    from tunix.rl.grpo.grpo_learner import GRPOConfig, GRPOLearner
    from tunix.rl.rollout import base_rollout
    from tunix.sft import metrics_logger, peft_trainer, utils as sft_utils

    summary: dict = {"jax": jax.__version__, "devices": str(jax.devices())}
    t0 = time.perf_counter()
    hf_config = json.load(open(os.path.join(model_dir, "config.json")))
    # A ModelConfig for any Gemma-3 text checkpoint, read from its HF config.json (tunix only ships
    # presets for the real sizes: gemma3_270m(), gemma3_1b_it(), ...).
    rope = hf_config.get("rope_parameters") or {}
    config = gemma3_lib.ModelConfig(
        num_layers=hf_config["num_hidden_layers"],
        num_embed=hf_config["vocab_size"],
        embed_dim=hf_config["hidden_size"],
        hidden_dim=hf_config["intermediate_size"],
        num_heads=hf_config["num_attention_heads"],
        head_dim=hf_config["head_dim"],
        num_kv_heads=hf_config["num_key_value_heads"],
        sliding_window_size=hf_config["sliding_window"],
        local_base_frequency=int(rope.get("sliding_attention", {}).get("rope_theta", 10_000)),
        global_base_frequency=int(rope.get("full_attention", {}).get("rope_theta", 1_000_000)),
        param_dtype=jnp.float32,
    )
    # Auto axes: jax 0.10 makes Explicit ones by default, which PeftTrainer's sharding constraint rejects.
    mesh = jax.make_mesh((1, 1), ("fsdp", "tp"), axis_types=(jax.sharding.AxisType.Auto,) * 2)
    with mesh:
        model = params_safetensors_lib.create_model_from_safe_tensors(model_dir, config, mesh, dtype=jnp.float32)
    _stage(summary, "tunix_load", t0, params=int(sum(x.size for x in jax.tree.leaves(
        __import__("flax").nnx.state(model, __import__("flax").nnx.Param)))))

    # Tokenizer: the HF tokenizer directly (tunix's SentencePiece path breaks on sentencepiece>=0.2.2
    # and strips turn markers in tokenize()).
    tok = AutoTokenizer.from_pretrained(model_dir)
    pad_id = tok.pad_token_id
    t0 = time.perf_counter()
    text = tok.apply_chat_template(
        [{"role": "user", "content": USER}, {"role": "assistant", "content": REPLY}], tokenize=False
    )
    prompt = tok.apply_chat_template([{"role": "user", "content": USER}], tokenize=False, add_generation_prompt=True)
    ids = tok(text, add_special_tokens=False)["input_ids"]  # the template already has <bos>
    n_prompt = len(tok(prompt, add_special_tokens=False)["input_ids"])  # fine here: no tag merges at the seam
    L = 128
    tokens = np.full((2, L), pad_id, np.int32)
    mask = np.zeros((2, L), np.int32)
    tokens[:, : len(ids)] = ids[:L]
    # input_mask[i] weights the prediction of token i (PeftTrainer uses input_mask[:, 1:]).
    mask[:, n_prompt : len(ids)] = 1

    def batches():
        for _ in range(steps):
            yield peft_trainer.TrainingInput(input_tokens=tokens, input_mask=mask)

    def gen_model_input_fn(x: peft_trainer.TrainingInput):
        pad_mask = x.input_tokens != pad_id
        return {
            "input_tokens": x.input_tokens,
            "input_mask": x.input_mask,
            "positions": sft_utils.build_positions_from_mask(pad_mask),
            "attention_mask": sft_utils.make_causal_attn_mask(pad_mask),
        }

    losses = []

    class _Hooks(__import__("tunix.sft.hooks", fromlist=["TrainingHooks"]).TrainingHooks):
        def on_train_start(self, trainer): pass
        def on_train_end(self, trainer): pass
        def on_train_step_start(self, trainer): pass
        def on_train_step_end(self, trainer, train_step, train_loss, step_time=None):
            losses.append(float(train_loss))
        def on_eval_step_start(self, trainer): pass
        def on_eval_step_end(self, trainer, eval_loss): pass

    logdir = "/tmp/probe_tunix_metrics"
    trainer = peft_trainer.PeftTrainer(
        model,
        optax.adamw(1e-3),
        peft_trainer.TrainingConfig(
            eval_every_n_steps=1000,
            max_steps=steps,
            metrics_logging_options=metrics_logger.MetricsLoggerOptions(log_dir=logdir, flush_every_n_steps=1),
        ),
    ).with_gen_model_input_fn(gen_model_input_fn)
    trainer.with_training_hooks(_Hooks())
    with mesh:
        trainer.train(batches())
    _stage(summary, "tunix_sft", t0, steps=steps, losses=[round(x, 4) for x in losses])

    # GRPO: the rollout and reference are the same nnx model object as the actor's base (full FT:
    # reference must be a separate copy, since the actor's weights change).
    t0 = time.perf_counter()
    with mesh:
        reference = params_safetensors_lib.create_model_from_safe_tensors(model_dir, config, mesh, dtype=jnp.float32)
    cluster_config = rl_cluster_lib.ClusterConfig(
        role_to_mesh={
            rl_cluster_lib.Role.ACTOR: mesh,
            rl_cluster_lib.Role.REFERENCE: mesh,
            rl_cluster_lib.Role.ROLLOUT: mesh,
        },
        rollout_engine="vanilla",
        offload_to_cpu=False,
        training_config=rl_cluster_lib.RLTrainingConfig(
            actor_optimizer=optax.adamw(1e-4),
            eval_every_n_steps=1000,
            max_steps=steps,
            mini_batch_size=2,
            train_micro_batch_size=2,
            metrics_logging_options=metrics_logger.MetricsLoggerOptions(log_dir=logdir + "_grpo", flush_every_n_steps=1),
        ),
        rollout_config=base_rollout.RolloutConfig(
            max_tokens_to_generate=16,
            max_prompt_length=64,
            kv_cache_size=64 + 16 + 8,
            temperature=0.9,
            top_p=1.0,
            top_k=50,
            eos_tokens=[1, 106],  # <eos> and <end_of_turn>
        ),
    )
    rl_cluster = rl_cluster_lib.RLCluster(
        actor=model, reference=reference, tokenizer=tok, cluster_config=cluster_config
    )
    seen = []

    def format_reward(prompts, completions, **kwargs):
        seen.append((len(prompts), type(completions[0]).__name__, sorted(kwargs)))
        return [_format_reward(c) for c in completions]

    def answer_reward(prompts, completions, answer, **kwargs):
        return [1.0 if a in c else 0.0 for c, a in zip(completions, answer)]

    learner = GRPOLearner(
        rl_cluster=rl_cluster,
        algo_config=GRPOConfig(num_generations=2, num_iterations=1, beta=0.04, epsilon=0.2),
        reward_fns=[format_reward, answer_reward],
    )
    # Each batch is a dict of numpy arrays (what grain's batching yields): the learner repeats every
    # leaf with jax.tree.map(np.repeat), so a plain list of strings is split into characters' arrays
    # and the HF tokenizer then rejects them. "prompts" are strings the rollout tokenizes with
    # tokenizer.encode (adds <bos>; the sampler drops a duplicated one); other keys reach the rewards.
    rows = [{"prompts": np.array([prompt, prompt]), "answer": np.array(["11 months", "11 months"])}
            for _ in range(steps)]
    with mesh:
        learner.train(rows)
    _stage(summary, "tunix_grpo", t0, steps=steps, reward_calls=len(seen), reward_args=seen[:1],
           actor_steps=int(rl_cluster.actor_trainer.train_steps))
    return summary


# ----------------------------------------------------------------------------------- Unsloth
def probe_unsloth(model_dir: str, steps: int, full: bool) -> dict:
    """Unsloth 2026.10 on CPU: FastModel.from_pretrained(local path) + LoRA, TRL SFT, then GRPO."""
    t0 = time.perf_counter()
    from unsloth import FastModel  # must come before trl/transformers (it patches them)
    import torch
    import transformers
    import trl
    from datasets import Dataset

    summary: dict = {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
                     "unsloth": __import__("unsloth").__version__}
    _stage(summary, "unsloth_import", t0)
    t0 = time.perf_counter()
    model, tokenizer = FastModel.from_pretrained(
        model_name=model_dir,
        max_seq_length=256,
        load_in_4bit=False,
        load_in_8bit=False,
        full_finetuning=full,
        dtype=torch.float32,
    )
    if not full:
        model = FastModel.get_peft_model(
            model, r=8, lora_alpha=8, lora_dropout=0, bias="none", random_state=3407,
            finetune_language_layers=True, finetune_attention_modules=True, finetune_mlp_modules=True,
        )
    _stage(summary, "unsloth_load", t0, model=type(model).__name__, tokenizer=type(tokenizer).__name__)

    from trl import GRPOConfig, GRPOTrainer, SFTConfig, SFTTrainer

    t0 = time.perf_counter()
    sft_rows = Dataset.from_list([
        {"prompt": [{"role": "user", "content": USER}], "completion": [{"role": "assistant", "content": REPLY}]}
    ] * 8)
    sft = SFTTrainer(
        model=model,
        processing_class=tokenizer,
        train_dataset=sft_rows,
        args=SFTConfig(
            output_dir="/tmp/probe_unsloth_sft", max_steps=steps, per_device_train_batch_size=2,
            learning_rate=1e-3, logging_steps=1, save_strategy="no", report_to="none", use_cpu=True,
            max_length=256, seed=0, optim="adamw_torch",
        ),
    )
    sft.train()
    losses = [round(h["loss"], 4) for h in sft.state.log_history if "loss" in h]
    _stage(summary, "unsloth_sft", t0, steps=steps, losses=losses)

    t0 = time.perf_counter()
    seen = []

    def format_reward(prompts, completions, **kwargs):
        seen.append(type(completions[0]).__name__)
        return [_format_reward(c[0]["content"]) for c in completions]

    def answer_reward(prompts, completions, answer, **kwargs):
        return [1.0 if a in c[0]["content"] else 0.0 for c, a in zip(completions, answer)]

    grpo_rows = Dataset.from_list([{"prompt": [{"role": "user", "content": USER}], "answer": "11 months"}] * 8)
    grpo = GRPOTrainer(
        model=model,
        processing_class=tokenizer,
        reward_funcs=[format_reward, answer_reward],
        train_dataset=grpo_rows,
        args=GRPOConfig(
            output_dir="/tmp/probe_unsloth_grpo", max_steps=steps, per_device_train_batch_size=2,
            num_generations=2, max_completion_length=16, learning_rate=1e-4, logging_steps=1,
            save_strategy="no", report_to="none", use_cpu=True, seed=0, optim="adamw_torch",
        ),
    )
    grpo.train()
    rewards = [round(h["reward"], 4) for h in grpo.state.log_history if "reward" in h]
    _stage(summary, "unsloth_grpo", t0, steps=steps, rewards=rewards, completion_type=seen[:1])
    return summary


# ------------------------------------------------------------------- base notebook dry run
def _percent_cells(path: str) -> list[dict]:
    """Code cells of a jupytext percent .py -> [{"source", "parameters"}] (no jupytext needed: the
    Tunix env has none)."""
    cells, current = [], None
    for line in open(path, encoding="utf-8").read().splitlines():
        if line.startswith("# %%"):
            current = None if "[markdown]" in line else {"lines": [], "parameters": '"parameters"' in line}
            if current is not None:
                cells.append(current)
        elif current is not None:
            stripped = line.lstrip()
            if stripped.startswith(("# !", "# %")):  # a commented-out magic: keep the block non-empty
                line = line[: len(line) - len(stripped)] + "pass"
            current["lines"].append(line)
    return [{"source": "\n".join(c["lines"]), "parameters": c["parameters"]} for c in cells]


def run_base_notebook(path: str, overrides: list[str]) -> dict:
    """Execute a base notebook's code cells in-process with GSM8K replaced by 8 fake rows.

    The base notebooks read `openai/gsm8k` from the hub, which these machines cannot reach; this
    swaps `datasets.load_dataset` for a local stand-in with the same columns (question, answer
    ending in `#### N`), turns `notebook_login()` into a no-op, skips shell/magic lines, and applies
    `--set name=value` overrides right after the `parameters` cell (papermill's place for them).
    """
    import ast
    import datasets
    import huggingface_hub

    rows = [{"question": f"Tom has {a} apples and buys {b} more. How many apples does he have?",
             "answer": f"Tom starts with {a} apples and buys {b}. {a} + {b} = {a + b}.\n#### {a + b}"}
            for a, b in [(2, 3), (4, 5), (1, 7), (6, 2), (3, 3), (8, 1), (5, 4), (7, 2)]]

    def fake_load_dataset(name, config=None, split=None, **kwargs):
        assert name == "openai/gsm8k" and config == "main", (name, config)
        dd = datasets.DatasetDict({"train": datasets.Dataset.from_list(rows),
                                   "test": datasets.Dataset.from_list(rows[:2])})
        return dd[split] if split else dd

    datasets.load_dataset = fake_load_dataset
    huggingface_hub.notebook_login = lambda *a, **k: None
    namespace: dict = {"__name__": "__main__"}
    timings = []
    for cell in _percent_cells(path):
        # magics are commented out in the percent .py (`# !pip ...`), so they are plain comments here
        code = cell["source"]
        t0 = time.perf_counter()
        exec(compile(code, f"<{os.path.basename(path)} cell {len(timings)}>", "exec"), namespace)
        if cell["parameters"]:
            for item in overrides:
                name, _, value = item.partition("=")
                try:
                    namespace[name] = ast.literal_eval(value)
                except (ValueError, SyntaxError):
                    namespace[name] = value
        timings.append(round(time.perf_counter() - t0, 2))
    return {"notebook": path, "cells": len(timings), "cell_wall_s": timings}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("family", choices=["tunix", "unsloth", "notebook"])
    parser.add_argument("--notebook", help="notebook: the base notebook (.py or .ipynb) to dry-run")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="notebook: parameter override applied after the parameters cell")
    parser.add_argument("--model", default="models/tiny-gemma3")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="unsloth: full fine-tuning instead of LoRA")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    if args.family == "notebook":
        summary = run_base_notebook(args.notebook, args.set)
    elif args.family == "tunix":
        summary = probe_tunix(args.model, args.steps)
    else:
        summary = probe_unsloth(args.model, args.steps, args.full)
    summary["total_wall_s"] = round(time.perf_counter() - t0, 2)
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
