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
#     display_name: DSA Unsloth
#     language: python
#     name: dsa-unsloth
# ---

# %% [markdown]
# # Gemma 3 (1B) on GSM8K with Unsloth: SFT, then GRPO
#
# A GSM8K base notebook in the style of Unsloth's Gemma 3 GRPO notebook: `FastModel` with LoRA, the
# `<start_working_out>` / `<SOLUTION>` answer format, a short SFT pass so the model learns the format,
# then GRPO with four reward functions (`match_format_exactly`, `match_format_approximately`,
# `check_answer`, `check_numbers`) that read conversational completions (`completion[0]["content"]`).
#
# It is one of the inputs of the DSA notebook patcher (`scripts/adapt_dsa_notebook.py`).

# %% [markdown]
# ### Installation

# %%
# %%capture
import os

if "COLAB_" not in "".join(os.environ.keys()):
    # !pip install unsloth
else:
    # Colab: install without touching its preinstalled torch.
    # !pip install --no-deps unsloth unsloth_zoo bitsandbytes accelerate peft trl triton cut_cross_entropy
    # !pip install sentencepiece protobuf "datasets>=3.4.1" huggingface_hub hf_transfer

# %% [markdown]
# ### Settings

# %% tags=["parameters"]
model_name = "unsloth/gemma-3-1b-it"
max_seq_length = 1024
full_finetuning = False  # True trains every weight instead of LoRA adapters
sft_max_steps = 30
grpo_max_steps = 50
num_generations = 4
seed = 3407

# %% [markdown]
# ### Unsloth: load Gemma 3 with `FastModel`

# %%
from unsloth import FastModel
import torch

model, tokenizer = FastModel.from_pretrained(
    model_name=model_name,
    max_seq_length=max_seq_length,
    load_in_4bit=False,
    load_in_8bit=False,
    full_finetuning=full_finetuning,
)

# %% [markdown]
# LoRA adapters, so only 1 to 10 % of the weights are trained.

# %%
if not full_finetuning:
    model = FastModel.get_peft_model(
        model,
        finetune_vision_layers=False,
        finetune_language_layers=True,
        finetune_attention_modules=True,
        finetune_mlp_modules=True,
        r=8,
        lora_alpha=8,
        lora_dropout=0,
        bias="none",
        random_state=seed,
    )

# %% [markdown]
# ### Data prep
#
# GSM8K's answers end with `#### <number>`: `extract_hash_answer` keeps the number.

# %%
from datasets import load_dataset

dataset = load_dataset("openai/gsm8k", "main", split="train")


def extract_hash_answer(text):
    if "####" not in text:
        return None
    return text.split("####")[1].strip()


# %% [markdown]
# The format the model must learn: its working out between `<start_working_out>` and
# `<end_working_out>`, then the answer between `<SOLUTION>` and `</SOLUTION>`.

# %%
reasoning_start = "<start_working_out>"
reasoning_end = "<end_working_out>"
solution_start = "<SOLUTION>"
solution_end = "</SOLUTION>"

system_prompt = f"""You are given a problem.
Think about the problem and provide your working out.
Place it between {reasoning_start} and {reasoning_end}.
Then, provide your solution between {solution_start}{solution_end}"""
system_prompt

# %%
dataset = dataset.map(
    lambda x: {
        "prompt": [
            {"role": "system", "content": system_prompt},
            {"role": "user", "content": x["question"]},
        ],
        "answer": extract_hash_answer(x["answer"]),
    }
)
dataset[0]

# %% [markdown]
# ### SFT: teach the format first
#
# The worked GSM8K solution becomes the working out; the number after `####` the solution.

# %%
from unsloth.chat_templates import get_chat_template

tokenizer = get_chat_template(tokenizer, chat_template="gemma-3")


def format_sft_example(x):
    working = x["answer"].split("####")[0].strip()
    final = extract_hash_answer(x["answer"])
    reply = f"{reasoning_start}{working}{reasoning_end}{solution_start}{final}{solution_end}"
    messages = [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": x["question"]},
        {"role": "assistant", "content": reply},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False).removeprefix("<bos>")
    return {"text": text}


# Keep only "text": a leftover "prompt" column would make TRL treat the rows as prompt-completion pairs.
sft_dataset = dataset.map(format_sft_example, remove_columns=dataset.column_names)
sft_dataset[0]["text"]

# %%
from trl import SFTConfig, SFTTrainer

sft_trainer = SFTTrainer(
    model=model,
    processing_class=tokenizer,
    train_dataset=sft_dataset,
    args=SFTConfig(
        dataset_text_field="text",
        per_device_train_batch_size=2,
        gradient_accumulation_steps=4,
        warmup_steps=5,
        max_steps=sft_max_steps,
        learning_rate=2e-4,
        logging_steps=1,
        optim="adamw_8bit",
        weight_decay=0.01,
        lr_scheduler_type="linear",
        seed=seed,
        output_dir="outputs_sft",
        report_to="none",
    ),
)

# %% [markdown]
# Train on the model's replies only: the user turn (system prompt + question) is masked out.
# `get_chat_template(tokenizer, "gemma-3")` already told the tokenizer where turns start
# (`<start_of_turn>user\n` / `<start_of_turn>model\n`); current unsloth-zoo raises if they are passed again.

# %%
from unsloth.chat_templates import train_on_responses_only

sft_trainer = train_on_responses_only(sft_trainer)

# %%
sft_stats = sft_trainer.train()

# %% [markdown]
# ### Reward functions
#
# Completions are conversational: `completion[0]["content"]` is the generated reply.

# %%
import re

match_format = re.compile(
    rf"^[\s]{{0,}}"
    rf"{reasoning_start}.+?{reasoning_end}.*?"
    rf"{solution_start}(.+?){solution_end}"
    rf"[\s]{{0,}}$",
    flags=re.MULTILINE | re.DOTALL,
)


def match_format_exactly(completions, **kwargs):
    scores = []
    for completion in completions:
        score = 0
        response = completion[0]["content"]
        # 3 points when the whole reply has the format
        if match_format.search(response) is not None:
            score += 3.0
        scores.append(score)
    return scores


def match_format_approximately(completions, **kwargs):
    scores = []
    for completion in completions:
        score = 0
        response = completion[0]["content"]
        # Half a point per tag seen exactly once, a point off otherwise
        score += 0.5 if response.count(reasoning_start) == 1 else -1.0
        score += 0.5 if response.count(reasoning_end) == 1 else -1.0
        score += 0.5 if response.count(solution_start) == 1 else -1.0
        score += 0.5 if response.count(solution_end) == 1 else -1.0
        scores.append(score)
    return scores


def check_answer(prompts, completions, answer, **kwargs):
    responses = [completion[0]["content"] for completion in completions]
    extracted_responses = [
        guess.group(1) if (guess := match_format.search(r)) is not None else None for r in responses
    ]
    scores = []
    for guess, true_answer in zip(extracted_responses, answer):
        score = 0
        if guess is None:
            scores.append(0)
            continue
        if guess == true_answer:
            score += 3.0
        elif guess.strip() == true_answer.strip():
            score += 1.5
        else:
            # Partial credit when the number is within 10 % / 20 %
            try:
                ratio = float(guess) / float(true_answer)
                if 0.9 <= ratio <= 1.1:
                    score += 0.5
                elif 0.8 <= ratio <= 1.2:
                    score += 0.25
                else:
                    score -= 1.0
            except (ValueError, ZeroDivisionError):
                score -= 0.5
        scores.append(score)
    return scores


match_numbers = re.compile(rf"{solution_start}.*?([\d\.]{{1,}})", flags=re.MULTILINE | re.DOTALL)


def check_numbers(prompts, completions, answer, **kwargs):
    question = prompts[0][-1]["content"]
    responses = [completion[0]["content"] for completion in completions]
    extracted_responses = [
        guess.group(1) if (guess := match_numbers.search(r)) is not None else None for r in responses
    ]
    print("-" * 20, f"Question:\n{question}", f"\nAnswer:\n{answer[0]}", f"\nResponse:\n{responses[0]}")
    scores = []
    for guess, true_answer in zip(extracted_responses, answer):
        if guess is None:
            scores.append(0)
            continue
        try:
            scores.append(1.5 if float(guess.strip()) == float(true_answer.strip()) else 0.0)
        except ValueError:
            scores.append(0)
    return scores


# %% [markdown]
# ### Train with GRPO

# %%
max_prompt_length = 256

from trl import GRPOConfig, GRPOTrainer

training_args = GRPOConfig(
    learning_rate=5e-6,
    adam_beta1=0.9,
    adam_beta2=0.99,
    weight_decay=0.1,
    warmup_steps=max(1, grpo_max_steps // 10),
    lr_scheduler_type="cosine",
    optim="adamw_torch_fused",
    logging_steps=1,
    per_device_train_batch_size=num_generations,  # one prompt x num_generations completions per step (TRL needs divisibility)
    gradient_accumulation_steps=1,
    num_generations=num_generations,
    max_completion_length=max_seq_length - max_prompt_length,
    max_steps=grpo_max_steps,
    save_steps=grpo_max_steps,
    max_grad_norm=0.1,
    seed=seed,
    report_to="none",
    output_dir="outputs",
)

trainer = GRPOTrainer(
    model=model,
    processing_class=tokenizer,
    reward_funcs=[
        match_format_exactly,
        match_format_approximately,
        check_answer,
        check_numbers,
    ],
    args=training_args,
    train_dataset=dataset,
)
trainer.train()

# %% [markdown]
# ### Inference

# %%
messages = [
    {"role": "system", "content": system_prompt},
    {"role": "user", "content": "What is the sqrt of 101?"},
]
text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
from transformers import TextStreamer

_ = model.generate(
    **tokenizer(text, return_tensors="pt").to(model.device),
    max_new_tokens=64,
    temperature=1.0,
    top_p=0.95,
    top_k=64,
    streamer=TextStreamer(tokenizer, skip_prompt=True),
)

# %% [markdown]
# ### Saving

# %%
model.save_pretrained("gemma-3")  # LoRA adapters (or the full model)
tokenizer.save_pretrained("gemma-3")
