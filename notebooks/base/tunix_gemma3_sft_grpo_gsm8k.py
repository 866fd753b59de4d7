# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: DSA Tunix
#     language: python
#     name: dsa-tunix
# ---

# %% [markdown]
# # Gemma 3 (1B-it) on GSM8K with Tunix: SFT, then GRPO, full fine-tuning (no LoRA)
#
# A GSM8K base notebook in the shape of the Kaggle "SFT -> GRPO, no LoRA, Tunix" notebook, written
# for google-tunix 0.1.7 on JAX: Gemma 3 from its safetensors folder, a `<reasoning>`/`<answer>`
# format, `tokenize_function` -> `TrainingInput(input_tokens, input_mask)`, `PeftTrainer` SFT of
# every weight, an inference check that pre-fills the opening tag, then GRPO with
# `RLCluster` + `GRPOLearner` and reward functions `fn(prompts, completions, **kwargs)`.
#
# Fixes over the Kaggle original: `ModelConfig.gemma3_1b_it()` (0.1.6+), `algo_config=` (0.1.4+),
# every GRPO import present, stop on `<end_of_turn>` (106) as well as `<eos>`, the loss mask taken
# from one tokenization of the whole sequence, GRPO prompts pre-filled like inference.
#
# It is one of the inputs of the DSA notebook patcher (`scripts/adapt_dsa_notebook.py`).

# %% [markdown]
# ## Install

# %%
# !pip install -q "google-tunix==0.1.7" "jax[tpu]" "sentencepiece<0.2.2" "transformers==5.12.1" datasets kagglehub

# %% [markdown]
# ## Settings

# %% tags=["parameters"]
KAGGLE_MODEL_HANDLE = "google/gemma-3/transformers/gemma-3-1b-it"
MODEL_PATH = ""  # a local safetensors folder; empty: download KAGGLE_MODEL_HANDLE with kagglehub
MODEL_CONFIG = "gemma3_1b_it"  # a tunix ModelConfig preset, or "hf" to read the folder's config.json
MAX_SEQ_LENGTH = 512
MESH_SHAPE = None  # None: (number of devices, 1) as (fsdp, tp)
SFT_STEPS = 100
SFT_BATCH_SIZE = 4
SFT_LEARNING_RATE = 1e-5
GRPO_STEPS = 50
GRPO_BATCH_SIZE = 1
NUM_GENERATIONS = 4
MAX_PROMPT_LENGTH = 256
TOTAL_GENERATION_STEPS = 256
GRPO_LEARNING_RATE = 3e-6
BETA = 0.08
EPSILON = 0.2
SEED = 42

# %% [markdown]
# ## Model

# %%
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
from transformers import AutoTokenizer
from tunix.models.gemma3 import model as gemma3_lib
from tunix.models.gemma3 import params_safetensors as params_safetensors_lib

if not MODEL_PATH:
    import kagglehub

    MODEL_PATH = kagglehub.model_download(KAGGLE_MODEL_HANDLE)

on_cpu = jax.devices()[0].platform == "cpu"
param_dtype = jnp.float32 if on_cpu else jnp.bfloat16


def model_config_from_hf(path):
    """A tunix ModelConfig from a Gemma-3 text checkpoint's config.json (any size)."""
    hf = json.load(open(os.path.join(path, "config.json")))
    rope = hf.get("rope_parameters") or {}
    return gemma3_lib.ModelConfig(
        num_layers=hf["num_hidden_layers"],
        num_embed=hf["vocab_size"],
        embed_dim=hf["hidden_size"],
        hidden_dim=hf["intermediate_size"],
        num_heads=hf["num_attention_heads"],
        head_dim=hf["head_dim"],
        num_kv_heads=hf["num_key_value_heads"],
        sliding_window_size=hf["sliding_window"],
        local_base_frequency=int(rope.get("sliding_attention", {}).get("rope_theta", 10_000)),
        global_base_frequency=int(rope.get("full_attention", {}).get("rope_theta", 1_000_000)),
        param_dtype=param_dtype,
    )


model_config = (
    model_config_from_hf(MODEL_PATH) if MODEL_CONFIG == "hf" else getattr(gemma3_lib.ModelConfig, MODEL_CONFIG)()
)
if MESH_SHAPE is None:
    MESH_SHAPE = (len(jax.devices()), 1)
# Auto axes: jax >= 0.7 makes Explicit ones by default, which PeftTrainer's sharding constraint rejects.
mesh = jax.make_mesh(MESH_SHAPE, ("fsdp", "tp"), axis_types=(jax.sharding.AxisType.Auto,) * 2)
with mesh:
    gemma = params_safetensors_lib.create_model_from_safe_tensors(MODEL_PATH, model_config, mesh, dtype=param_dtype)

# The Hugging Face tokenizer (tunix's SentencePiece path breaks on sentencepiece >= 0.2.2 and its
# tokenize() strips the turn markers).
tokenizer = AutoTokenizer.from_pretrained(MODEL_PATH)
PAD_ID = tokenizer.pad_token_id
EOS_TOKENS = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<end_of_turn>")]  # 1 and 106

# %% [markdown]
# ## Answer format

# %%
reasoning_start = "<reasoning>"
reasoning_end = "</reasoning>"
solution_start = "<answer>"
solution_end = "</answer>"

SYSTEM_PROMPT = f"""You are given a math problem. Think about it and show your working between \
{reasoning_start} and {reasoning_end}, then give the final number between {solution_start} and {solution_end}."""

# %% [markdown]
# ## GSM8K

# %%
from datasets import load_dataset


def extract_hash_answer(text):
    if "####" not in text:
        return None
    return text.split("####")[1].strip()


gsm8k = load_dataset("openai/gsm8k", "main")
train_raw, test_raw = gsm8k["train"], gsm8k["test"]
len(train_raw), len(test_raw)

# %%
import re


def clean_gsm8k_content(text):
    """The worked solution without GSM8K's calculator annotations (<<2*3=6>>) or the #### line."""
    working = text.split("####")[0]
    return re.sub(r"<<[^>]*>>", "", working).strip()


def build_messages(question):
    # Gemma has no system role: the system prompt is folded into the user turn.
    return [{"role": "user", "content": f"{SYSTEM_PROMPT}\n\n{question}"}]


def format_gsm8k_example(example):
    reply = (
        f"{reasoning_start}\n{clean_gsm8k_content(example['answer'])}\n{reasoning_end}\n"
        f"{solution_start}\n{extract_hash_answer(example['answer'])}\n{solution_end}"
    )
    messages = build_messages(example["question"]) + [{"role": "assistant", "content": reply}]
    return {"text": tokenizer.apply_chat_template(messages, tokenize=False)}


sft_texts = [format_gsm8k_example(ex)["text"] for ex in train_raw]
print(sft_texts[0])

# %% [markdown]
# ## Tokenize: one tokenization of the whole sequence, loss only on the model turn
#
# `PeftTrainer` weights the prediction of token *i* by `input_mask[i]`, so the mask is 1 exactly on
# the reply's tokens (and its `<end_of_turn>`), found by character offsets of the same tokenization.

# %%
from tunix.sft import peft_trainer


def tokenize_function(text):
    """text (rendered chat, starts with <bos>) -> (input_tokens[L], input_mask[L]) int32, padded."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)  # <bos> is in the text
    reply_start = text.rindex("<start_of_turn>model\n") + len("<start_of_turn>model\n")
    ids = enc["input_ids"][:MAX_SEQ_LENGTH]
    mask = [1 if start >= reply_start else 0 for start, _ in enc["offset_mapping"][:MAX_SEQ_LENGTH]]
    pad = MAX_SEQ_LENGTH - len(ids)
    return np.array(ids + [PAD_ID] * pad, np.int32), np.array(mask + [0] * pad, np.int32)


def sft_batches(texts, batch_size, steps, seed=SEED):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        pick = rng.choice(len(texts), size=batch_size, replace=len(texts) < batch_size)
        tokens, masks = zip(*(tokenize_function(texts[i]) for i in pick))
        yield peft_trainer.TrainingInput(input_tokens=np.stack(tokens), input_mask=np.stack(masks))


# %% [markdown]
# ## SFT with `PeftTrainer` (full fine-tuning: no LoRA on the model, so every weight trains)

# %%
from tunix.sft import metrics_logger
from tunix.sft import utils as sft_utils


def gen_model_input_fn(x: peft_trainer.TrainingInput):
    pad_mask = x.input_tokens != PAD_ID
    return {
        "input_tokens": x.input_tokens,
        "input_mask": x.input_mask,
        "positions": sft_utils.build_positions_from_mask(pad_mask),
        "attention_mask": sft_utils.make_causal_attn_mask(pad_mask),
    }


sft_config = peft_trainer.TrainingConfig(
    eval_every_n_steps=max(SFT_STEPS, 1),
    max_steps=SFT_STEPS,
    metrics_logging_options=metrics_logger.MetricsLoggerOptions(log_dir="./logs/sft", flush_every_n_steps=10),
)
sft_trainer = peft_trainer.PeftTrainer(gemma, optax.adamw(SFT_LEARNING_RATE), sft_config).with_gen_model_input_fn(
    gen_model_input_fn
)
with mesh:
    sft_trainer.train(sft_batches(sft_texts, SFT_BATCH_SIZE, SFT_STEPS))

# %% [markdown]
# ## Inference: pre-fill the opening tag

# %%
from tunix.generate import sampler as sampler_lib

sampler = sampler_lib.Sampler(
    transformer=gemma,
    tokenizer=tokenizer,
    cache_config=sampler_lib.CacheConfig(
        cache_size=MAX_PROMPT_LENGTH + TOTAL_GENERATION_STEPS + 32,
        num_layers=model_config.num_layers,
        num_kv_heads=model_config.num_kv_heads,
        head_dim=model_config.head_dim,
    ),
)


def build_prompt(question):
    # Inference and GRPO both start the model's turn with the opening tag.
    return tokenizer.apply_chat_template(build_messages(question), tokenize=False, add_generation_prompt=True) + (
        f"{reasoning_start}\n"
    )


test_questions = [test_raw[i]["question"] for i in range(min(2, len(test_raw)))]
with mesh:
    out = sampler(
        [build_prompt(q) for q in test_questions],
        max_generation_steps=TOTAL_GENERATION_STEPS,
        max_prompt_length=MAX_PROMPT_LENGTH,
        temperature=1e-4,
        eos_tokens=EOS_TOKENS,
    )
for q, text in zip(test_questions, out.text):
    print(q, "\n->", reasoning_start + "\n" + text, "\n")

# %% [markdown]
# ## GRPO: rewards `fn(prompts, completions, **kwargs)` over plain-string completions

# %%
match_format = re.compile(
    rf"^[\s]*{reasoning_start}.+?{reasoning_end}.*?{solution_start}(.+?){solution_end}[\s]*$",
    flags=re.MULTILINE | re.DOTALL,
)


def with_opening_tag(completion):
    # The prompt pre-fills the opening tag, so the completion starts inside the reasoning block.
    return completion if completion.lstrip().startswith(reasoning_start) else f"{reasoning_start}\n{completion}"


def match_format_exactly(prompts, completions, **kwargs):
    return [3.0 if match_format.search(with_opening_tag(c)) else 0.0 for c in completions]


def match_format_approximately(prompts, completions, **kwargs):
    scores = []
    for c in completions:
        c = with_opening_tag(c)
        scores.append(sum(0.5 if c.count(tag) == 1 else -0.5 for tag in (reasoning_start, reasoning_end, solution_start, solution_end)))
    return scores


def check_answer(prompts, completions, answer, **kwargs):
    scores = []
    for c, true_answer in zip(completions, answer):
        guess = match_format.search(with_opening_tag(c))
        if guess is None:
            scores.append(0.0)
            continue
        guess = guess.group(1).strip()
        try:
            scores.append(3.0 if float(guess.replace(",", "")) == float(str(true_answer).replace(",", "")) else -1.0)
        except ValueError:
            scores.append(-0.5)
    return scores


# Each batch is a dict of numpy arrays (the learner repeats every leaf with np.repeat, so a plain
# list of strings would be split apart); "prompts" is what the rollout tokenizes, "answer" reaches
# check_answer as a keyword.
def grpo_batches(rows, batch_size, steps, seed=SEED):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        pick = rng.choice(len(rows), size=batch_size, replace=len(rows) < batch_size)
        yield {
            "prompts": np.array([build_prompt(rows[int(i)]["question"]) for i in pick]),
            "answer": np.array([extract_hash_answer(rows[int(i)]["answer"]) for i in pick]),
        }


# %%
from tunix.rl import rl_cluster as rl_cluster_lib
from tunix.rl.grpo.grpo_learner import GRPOConfig, GRPOLearner
from tunix.rl.rollout import base_rollout

# Full fine-tuning: the reference policy is a second, frozen copy of the SFT weights.
with mesh:
    reference = params_safetensors_lib.create_model_from_safe_tensors(MODEL_PATH, model_config, mesh, dtype=param_dtype)
    from flax import nnx

    nnx.update(reference, nnx.state(gemma))

cluster_config = rl_cluster_lib.ClusterConfig(
    role_to_mesh={
        rl_cluster_lib.Role.ACTOR: mesh,
        rl_cluster_lib.Role.REFERENCE: mesh,
        rl_cluster_lib.Role.ROLLOUT: mesh,
    },
    rollout_engine="vanilla",
    offload_to_cpu=False,
    training_config=rl_cluster_lib.RLTrainingConfig(
        actor_optimizer=optax.adamw(GRPO_LEARNING_RATE),
        eval_every_n_steps=max(GRPO_STEPS, 1),
        max_steps=GRPO_STEPS,
        mini_batch_size=GRPO_BATCH_SIZE,
        train_micro_batch_size=GRPO_BATCH_SIZE,
        metrics_logging_options=metrics_logger.MetricsLoggerOptions(log_dir="./logs/grpo", flush_every_n_steps=10),
    ),
    rollout_config=base_rollout.RolloutConfig(
        max_tokens_to_generate=TOTAL_GENERATION_STEPS,
        max_prompt_length=MAX_PROMPT_LENGTH,
        kv_cache_size=MAX_PROMPT_LENGTH + TOTAL_GENERATION_STEPS + 32,
        temperature=0.9,
        top_p=1.0,
        top_k=50,
        eos_tokens=EOS_TOKENS,
    ),
)
rl_cluster = rl_cluster_lib.RLCluster(actor=gemma, reference=reference, tokenizer=tokenizer, cluster_config=cluster_config)
grpo_trainer = GRPOLearner(
    rl_cluster=rl_cluster,
    algo_config=GRPOConfig(num_generations=NUM_GENERATIONS, num_iterations=1, beta=BETA, epsilon=EPSILON),
    reward_fns=[match_format_exactly, match_format_approximately, check_answer],
)
with mesh:
    grpo_trainer.train(grpo_batches(train_raw, GRPO_BATCH_SIZE, GRPO_STEPS))

# %% [markdown]
# ## Evaluate: format and answer accuracy on a few test questions

# %%
eval_rows = [test_raw[i] for i in range(min(8, len(test_raw)))]
with mesh:
    out = sampler(
        [build_prompt(r["question"]) for r in eval_rows],
        max_generation_steps=TOTAL_GENERATION_STEPS,
        max_prompt_length=MAX_PROMPT_LENGTH,
        temperature=1e-4,
        eos_tokens=EOS_TOKENS,
    )
fmt = match_format_exactly(None, out.text)
acc = check_answer(None, out.text, [extract_hash_answer(r["answer"]) for r in eval_rows])
print(f"format accuracy {np.mean([f > 0 for f in fmt]):.0%}, answer accuracy {np.mean([a == 3.0 for a in acc]):.0%}")

# %% [markdown]
# ## Save the weights

# %%
from flax import nnx
import orbax.checkpoint as ocp

checkpointer = ocp.StandardCheckpointer()
checkpointer.save(os.path.abspath("./gemma3_gsm8k_grpo"), nnx.state(gemma), force=True)
checkpointer.wait_until_finished()
