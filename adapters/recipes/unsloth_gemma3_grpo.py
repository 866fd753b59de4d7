"""Unsloth Gemma 3 (1B) GRPO, Colab and Kaggle variants (FIELD_NOTES §4c; nbformat 4.0, no ids).

``load_dataset("openai/gsm8k")`` + ``extract_hash_answer`` -> DIPG rows; the
``<start_working_out>``/``<SOLUTION>`` tags and ``system_prompt`` -> DIPG tags (system prompt on:
GRPO alone must be told the format); ``dataset.map`` to ``{"prompt", "answer"}`` -> DIPG prompts with
question/context/answer columns; the four rewards reading ``completion[0]["content"]`` -> DSA rewards
in the TRL convention; the TextStreamer demo -> kit inference (stop 106+1), sample questions and the
evaluation. Literal knobs (``max_seq_length``, ``max_prompt_length``, ``max_steps``) and the model name
follow the parameters cell.
"""

from __future__ import annotations

import re

from .base import Recipe, Repair, Rule, Signature
from .shared import HF_KNOB_REPAIRS, MODEL_NAME_REPAIR, TRL_REWARD_LIST_REPAIR

RECIPE = Recipe(
    name="unsloth-gemma3-grpo",
    title="Unsloth Gemma 3 GRPO (Colab / Kaggle)",
    signatures=(
        Signature(r"\bFastModel\b|\bFastLanguageModel\b", "Unsloth FastModel", 2, required=True),
        Signature(r"\bGRPOTrainer\b", "TRL GRPOTrainer", 2, required=True),
        Signature(r"<start_working_out>|<SOLUTION>", "<start_working_out>/<SOLUTION> tags", 1),
        Signature(r"openai/gsm8k", "GSM8K load_dataset", 1),
        Signature(r"completion\[0\]\[[\"']content[\"']\]", "conversational completions in rewards", 1),
    ),
    min_score=5,
    rules=(
        Rule("data", "replace", (r"\bload_dataset\(",), "GSM8K dataset -> DIPG train/test split (DATASET_ID)",
             cells=("dipg_data",)),
        Rule("gsm8k-helpers", "remove", (r"\bdef extract_hash_answer\(",), "GSM8K answer extraction: no DIPG use"),
        Rule("tags", "replace", (r"^reasoning_start\s*=",),
             "<start_working_out>/<SOLUTION> tags and system_prompt -> DIPG think/proof/answer tags",
             cells=("dipg_tags",)),
        Rule("sft-rows", "replace", (r"\bdef format_sft_example\(", r"\.removeprefix\("),
             "SFT text rows (GSM8K working out + template text, <bos> stripped) -> DIPG rows with the "
             "token-exact mask", cells=("trl_sft_data",)),
        Rule("responses-only", "remove", (r"\btrain_on_responses_only\(",),
             "train_on_responses_only: the token-exact mask already trains only the reply (and unsloth-zoo "
             "raises when instruction_part/response_part are passed to a tokenizer that knows them)"),
        Rule("train-log", "suffix", (r"\b\w*trainer\.train\(",),
             "per-step SFT losses and trained-token share -> OUTPUT_DIR/train_log.json", cells=("hf_train_log",)),
        Rule("prompts", "replace", (r"\bdataset\.map\(",),
             "GSM8K prompt/answer mapping -> DIPG prompts with question/context/answer columns",
             cells=("trl_grpo_data",)),
        Rule("rewards", "replace",
             (r"\bdef (match_format_exactly|match_format_approximately|check_answer|check_numbers)\(",
              r"^match_format\s*=", r"^match_numbers\s*="),
             "math/format rewards -> DSA rewards (strict, partial, gym rubric), TRL convention",
             cells=("trl_rewards",)),
        Rule("inference", "replace", (r"\bTextStreamer\b", r"\.generate\("),
             "free-form inference -> kit inference (stop 106+1), DIPG sample questions and evaluation",
             cells=("hf_inference", "sample_questions", "evaluate"), unless=(r"\.train\(",)),
    ),
    repairs=(
        TRL_REWARD_LIST_REPAIR,
        MODEL_NAME_REPAIR,
        Repair(
            name="sft_dataset",
            detect=r"\btrain_dataset(\s*=\s*)sft_dataset\b",
            fix=lambda s: re.sub(r"\btrain_dataset(\s*=\s*)sft_dataset\b", r"train_dataset\1dsa_sft_dataset", s),
            reason="SFT reads the kit's masked DIPG rows (dsa_sft_dataset)",
        ),
        Repair(
            name="grpo_dataset",
            detect=r"\bGRPOTrainer\((?s:.*)\btrain_dataset\s*=\s*dataset\b",
            fix=lambda s: re.sub(r"\btrain_dataset(\s*=\s*)dataset\b", r"train_dataset\1dsa_grpo_dataset", s),
            reason="GRPO reads the DIPG prompts (dsa_grpo_dataset): the SFT stage rebinds `dataset`",
        ),
    )
    + HF_KNOB_REPAIRS,
    insert=("parameters", "install", "headless", "dsa_core", "dipg_tags"),
    names={"trainer": "sft_trainer"},
    parameters={
        "MODEL_ID": "unsloth/gemma-3-1b-it",
        "USE_SYSTEM_PROMPT": True,
        "_DSA_EVAL_LABEL": "after GRPO",
    },
    packages={
        "med_safety_eval": "openenv-dipg-safety==0.1.67",
        "yaml": "pyyaml",
        "pydantic": "pydantic",
        "requests": "requests",
        "numpy": "numpy",
    },
)
