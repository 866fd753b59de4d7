"""TRL SFT example notebook (FIELD_NOTES §4e; nbformat 4.0): LoRA/QLoRA SFT on a chat or math set.

``load_dataset(...)`` -> DIPG rows pre-tokenized with the token-exact mask (``completion_mask`` and
``assistant_masks``); the generation demo -> kit inference (stop 106+1), sample questions and the
evaluation; ``notebook_login()`` made headless-safe; literal knobs and ``model_id`` follow the
parameters cell.
"""

from __future__ import annotations

from .base import Recipe, Rule, Signature
from .shared import (
    EVAL_DATASET_REPAIR,
    GSM8K_PATH_REPAIR,
    HF_KNOB_REPAIRS,
    MODEL_ID_REPAIR,
    MODEL_NAME_REPAIR,
    TRAIN_DATASET_REPAIR,
)

RECIPE = Recipe(
    name="trl-sft",
    title="TRL SFT example",
    signatures=(
        Signature(r"\bSFTTrainer\b", "TRL SFTTrainer", 3, required=True),
        Signature(r"\bSFTConfig\b", "SFTConfig", 1),
        Signature(r"\bLoraConfig\b|\bpeft_config\b", "LoRA config", 1),
        Signature(r"\bFastModel\b|\bFastLanguageModel\b", "not Unsloth", -5),
        Signature(r"\bGRPOTrainer\b", "no GRPOTrainer", -5),
    ),
    min_score=4,
    rules=(
        Rule("data", "replace", (r"\bload_dataset\(",), "training dataset -> DIPG train/test split (DATASET_ID)",
             cells=("dipg_data",)),
        Rule("gsm8k-mapping", "remove", (r"\bdef extract_hash_answer\(", r"\bdef to_prompt_completion\("),
             "GSM8K prompt/completion mapping: DIPG rows are rendered and masked by the kit (trl_sft_data)"),
        Rule("train-log", "suffix", (r"\btrainer\.train\(",),
             "per-step losses and trained-token share -> OUTPUT_DIR/train_log.json", cells=("hf_train_log",)),
        Rule("sft-rows", "prefix", (r"\bSFTTrainer\(",),
             "DIPG rows with the token-exact mask, built once the tokenizer exists (before SFTTrainer)",
             cells=("trl_sft_data",)),
        Rule("inference", "replace", (r"\.generate\(", r"\bpipeline\(\s*[\"']text-generation"),
             "generation demo -> kit inference (stop 106+1), DIPG sample questions and evaluation",
             cells=("hf_inference", "sample_questions", "evaluate"), unless=(r"\.train\(",)),
    ),
    repairs=(MODEL_ID_REPAIR, MODEL_NAME_REPAIR, GSM8K_PATH_REPAIR, TRAIN_DATASET_REPAIR, EVAL_DATASET_REPAIR)
    + HF_KNOB_REPAIRS,
    insert=("parameters", "install", "headless", "dsa_core", "dipg_tags"),
    names={},
    parameters={"MODEL_ID": "google/gemma-3-270m-it", "_DSA_EVAL_LABEL": "after SFT"},
    packages={
        "med_safety_eval": "openenv-dipg-safety==0.1.67",
        "yaml": "pyyaml",
        "pydantic": "pydantic",
        "requests": "requests",
        "numpy": "numpy",
    },
)
