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
#     display_name: DSA core (TRL)
#     language: python
#     name: dsa-core
# ---

# %% [markdown]
# # Supervised fine-tuning of Gemma 3 on GSM8K with TRL (LoRA optional)
#
# A GSM8K base notebook in the style of the TRL example notebooks: load `openai/gsm8k`, turn each
# row into a conversational prompt/completion pair, fine-tune with `SFTTrainer` (LoRA via PEFT, or
# the full model), then ask the trained model a question. The loss falls on the completion only
# (TRL's default for prompt/completion data).
#
# It is one of the inputs of the DSA notebook patcher (`scripts/adapt_dsa_notebook.py`), which turns
# it into a notebook that teaches the `<think>…</think><proof>…</proof><answer>…</answer>` format.

# %% [markdown]
# ## Install

# %%
# !pip install -Uq "trl[peft]" datasets accelerate

# %% [markdown]
# ## Log in to the Hugging Face Hub (to download Gemma and, optionally, to push the result)

# %%
from huggingface_hub import notebook_login

notebook_login()

# %% [markdown]
# ## Settings

# %% tags=["parameters"]
model_id = "google/gemma-3-1b-it"
output_dir = "gemma-3-1b-it-gsm8k-sft"
use_lora = True
max_steps = 60
learning_rate = 2e-4
max_length = 1024
seed = 42

# %% [markdown]
# ## Load the dataset
#
# GSM8K answers end with `#### <number>`; the worked solution before it becomes the completion.

# %%
from datasets import load_dataset

dataset_name = "openai/gsm8k"
dataset = load_dataset(dataset_name, "main")
train_dataset = dataset["train"]
eval_dataset = dataset["test"]
train_dataset

# %%
SYSTEM_PROMPT = "Solve the math problem step by step, then give the final answer after '####'."


def extract_hash_answer(text):
    if "####" not in text:
        return None
    return text.split("####")[1].strip()


def to_prompt_completion(example):
    return {
        "prompt": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": example["question"]},
        ],
        "completion": [{"role": "assistant", "content": example["answer"]}],
    }


train_dataset = train_dataset.map(to_prompt_completion, remove_columns=train_dataset.column_names)
eval_dataset = eval_dataset.map(to_prompt_completion, remove_columns=eval_dataset.column_names)
train_dataset[0]

# %% [markdown]
# ## Load the model

# %%
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained(model_id)
model = AutoModelForCausalLM.from_pretrained(
    model_id,
    dtype=torch.bfloat16 if torch.cuda.is_available() else torch.float32,
    attn_implementation="eager",  # Gemma 3 trains best with eager attention
)

# %% [markdown]
# ## LoRA configuration (skip it for a full fine-tune)

# %%
from peft import LoraConfig

peft_config = (
    LoraConfig(
        r=16,
        lora_alpha=32,
        lora_dropout=0.05,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        task_type="CAUSAL_LM",
    )
    if use_lora
    else None
)

# %% [markdown]
# ## Train

# %%
from trl import SFTConfig, SFTTrainer

training_args = SFTConfig(
    output_dir=output_dir,
    max_steps=max_steps,
    per_device_train_batch_size=2,
    gradient_accumulation_steps=4,
    learning_rate=learning_rate,
    lr_scheduler_type="cosine",
    warmup_steps=5,
    max_length=max_length,
    logging_steps=5,
    save_strategy="no",
    bf16=torch.cuda.is_available(),
    seed=seed,
    report_to="none",
)

trainer = SFTTrainer(
    model=model,
    args=training_args,
    train_dataset=train_dataset,
    eval_dataset=eval_dataset,
    processing_class=tokenizer,
    peft_config=peft_config,
)

# %%
trainer_stats = trainer.train()
trainer_stats

# %% [markdown]
# ## Try the trained model

# %%
messages = [
    {"role": "system", "content": SYSTEM_PROMPT},
    {"role": "user", "content": eval_dataset[0]["prompt"][1]["content"]},
]
inputs = tokenizer.apply_chat_template(
    messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
).to(trainer.model.device)
outputs = trainer.model.generate(**inputs, max_new_tokens=256, do_sample=False)
print(tokenizer.decode(outputs[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True))

# %% [markdown]
# ## Save

# %%
trainer.save_model(output_dir)
tokenizer.save_pretrained(output_dir)
# trainer.push_to_hub()  # needs a token with write access
