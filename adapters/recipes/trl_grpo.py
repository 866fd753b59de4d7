"""TRL GRPO example notebook (FIELD_NOTES §4e; nbformat 4.0): LoRA GRPO on a math set.

``load_dataset(...)`` -> DIPG rows; ``SYSTEM_PROMPT`` + ``make_conversation`` -> DIPG tags and
conversational prompts with question/context/answer columns; ``format_reward``/``accuracy_reward``
-> DSA rewards (TRL convention); the generation check -> kit inference, sample questions and the
evaluation; ``%tensorboard`` made headless-safe; literal knobs and ``model_id`` follow the
parameters cell.
"""

from __future__ import annotations

from .base import Recipe, Rule, Signature
from .shared import HF_KNOB_REPAIRS, MODEL_ID_REPAIR, TRL_REWARD_LIST_REPAIR

RECIPE = Recipe(
    name="trl-grpo",
    title="TRL GRPO example",
    signatures=(
        Signature(r"\bGRPOTrainer\b", "TRL GRPOTrainer", 3, required=True),
        Signature(r"\bGRPOConfig\b", "GRPOConfig", 1),
        Signature(r"\bdef make_conversation\(", "make_conversation", 1),
        Signature(r"\bdef (format_reward|accuracy_reward)\(", "format_reward / accuracy_reward", 1),
        Signature(r"\bFastModel\b|\bFastLanguageModel\b", "not Unsloth", -5),
    ),
    min_score=4,
    rules=(
        Rule("data", "replace", (r"\bload_dataset\(",), "math dataset -> DIPG train/test split (DATASET_ID)",
             cells=("dipg_data",)),
        Rule("prompts", "replace", (r"\bdef make_conversation\(", r"^SYSTEM_PROMPT\s*="),
             "math system prompt and make_conversation -> DIPG tags and conversational prompts",
             cells=("dipg_tags", "trl_grpo_data")),
        Rule("rewards", "replace", (r"\bdef (format_reward|accuracy_reward)\(",),
             "format/accuracy rewards -> DSA rewards (strict, partial, gym rubric), TRL convention",
             cells=("trl_rewards",)),
        Rule("inference", "replace", (r"\.generate\(",),
             "generation check -> kit inference (stop 106+1), DIPG sample questions and evaluation",
             cells=("hf_inference", "sample_questions", "evaluate"), unless=(r"\.train\(",)),
    ),
    repairs=(TRL_REWARD_LIST_REPAIR, MODEL_ID_REPAIR) + HF_KNOB_REPAIRS,
    insert=("parameters", "install", "headless", "dsa_core", "dipg_tags"),
    names={"dataset": "train_dataset"},
    parameters={"MODEL_ID": "google/gemma-3-270m-it", "USE_SYSTEM_PROMPT": True, "_DSA_EVAL_LABEL": "after GRPO"},
    packages={
        "med_safety_eval": "openenv-dipg-safety==0.1.67",
        "yaml": "pyyaml",
        "pydantic": "pydantic",
        "requests": "requests",
        "numpy": "numpy",
    },
)
