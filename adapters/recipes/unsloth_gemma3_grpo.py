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

from .base import Recipe, Rule, Signature
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
    repairs=(TRL_REWARD_LIST_REPAIR, MODEL_NAME_REPAIR) + HF_KNOB_REPAIRS,
    insert=("parameters", "install", "headless", "dsa_core", "dipg_tags"),
    names={},
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
