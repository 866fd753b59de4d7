"""Kaggle "DSA SFT -> GRPO, no LoRA, Tunix" (FIELD_NOTES §4a): Gemma-3-1B-it full fine-tune on TPU.

SFT half: GSM8K via ``load_dataset("openai/gsm8k")`` + ``format_gsm8k_example`` + a
``tokenize_function`` whose prompt length comes from a separate encode (mask one token late) ->
DIPG rows masked by the core; inference pre-filling ``<reasoning>`` with ``EOS_TOKENS=[eos]`` ->
the core's rendering, ``<think>`` pre-fill, stop ids (106, 1); majority-vote GSM8K evaluation ->
strict format + gym rubric. GRPO half: TFDS GSM8K -> DIPG prompts pre-filled like inference; math
rewards -> DSA rewards; the 0.1.3-era API (``gemma3_1b()``, ``grpo_config=``, missing imports) repaired.
"""

from __future__ import annotations

import re

from .base import Recipe, Repair, Rule, Signature
from .shared import (
    EOS_REPAIR,
    GEMMA3_1B_REPAIR,
    GRPO_CONFIG_KEYWORD_REPAIR,
    GRPO_IMPORTS_REPAIR,
    GSM8K_PATH_REPAIR,
    GSM8K_RELATIVE_PATH_REPAIR,
    RL_ENGINE_REPAIR,
    TUNIX_PIN_REPAIR,
    TUNIX_REWARD_LIST_REPAIR,
    EVAL_CALL_RULE,
)

RECIPE = Recipe(
    name="kaggle-dsa-tunix",
    title='Kaggle "DSA SFT -> GRPO, no LoRA, Tunix"',
    signatures=(
        Signature(r"\bKAGGLE_MODEL_HANDLE\b", "KAGGLE_MODEL_HANDLE config", 2),
        Signature(r"\bpeft_trainer\.TrainingInput\b|\bTrainingInput\(", "Tunix TrainingInput", 2, required=True),
        Signature(r"\bformat_gsm8k_example\b", "format_gsm8k_example", 2),
        Signature(r"\bdef tokenize_function\b", "tokenize_function", 1),
        Signature(r"\bGRPOLearner\b", "GRPOLearner (GRPO half)", 1),
        Signature(r"\bMESH_SHAPE\b", "MESH_SHAPE (TPU mesh)", 1),
    ),
    min_score=5,
    rules=(
        Rule("download", "replace", (r"\bkagglehub\.model_download\(",), "kagglehub download of a fixed handle",
             cells=("model_path",)),
        Rule("evaluation", "replace", (r"\bmajority_vote\b", r"^def evaluate\("),
             "GSM8K accuracy evaluation -> strict format + gym rubric on DIPG test rows", cells=("evaluate",)),
        EVAL_CALL_RULE,
        Rule("grpo-data", "replace", (r"\btfds\.data_source\(",),
             "TFDS GSM8K prompts -> DIPG prompts pre-filled with <think> like inference",
             cells=("tunix_grpo_data",)),
        Rule("formatting", "remove", (r"\bformat_gsm8k_example\b", r"\bclean_gsm8k_content\b"),
             "GSM8K text formatting: DIPG rows are rendered by the core's chat template"),
        Rule("data", "replace", (r"openai/gsm8k", r"\bextract_hash_answer\b"),
             "GSM8K dataset -> DIPG train/test split (DATASET_ID)", cells=("dipg_data",),
             unless=(r"\bdef (match_format_exactly|check_answer|check_numbers)\b",)),
        Rule("tags", "replace", (r"^reasoning_start\s*=",),
             "math-tutor tags and SYSTEM_PROMPT -> DIPG think/proof/answer tags", cells=("dipg_tags",)),
        Rule("tokenize", "replace", (r"\bdef tokenize_function\b",),
             "tokenize_function (separate prompt encode adds an EOS: mask one token late, first tag token "
             "never trained) -> token-exact mask", cells=("tunix_sft_inputs",)),
        Rule("inference", "replace", (r"\bsampler_lib\.Sampler\(",),
             "inference pre-filling <reasoning>, stop on eos only -> core prompt, <think> pre-fill, stop 106+1",
             cells=("tunix_inference",)),
        Rule("sample-questions", "replace", (r"^test_questions\s*=",),
             "math test questions -> DIPG test-split questions", cells=("sample_questions",)),
        Rule("math-helpers", "remove", (r"^import sympy", r"\bdef normalize_number\b"),
             "math answer helpers (sympy): no DIPG use"),
        Rule("rewards", "replace", (r"\bdef (match_format_exactly|match_format_approximately|check_answer|check_numbers)\b",),
             "math/format rewards -> DSA rewards (strict, partial, gym rubric)", cells=("tunix_rewards",)),
    ),
    repairs=(
        TUNIX_PIN_REPAIR,
        GEMMA3_1B_REPAIR,
        GRPO_CONFIG_KEYWORD_REPAIR,
        GRPO_IMPORTS_REPAIR,
        RL_ENGINE_REPAIR,
        EOS_REPAIR,
        TUNIX_REWARD_LIST_REPAIR,
        GSM8K_PATH_REPAIR,
        GSM8K_RELATIVE_PATH_REPAIR,
        Repair(
            name="model_handle",
            detect=r"^KAGGLE_MODEL_HANDLE\s*=\s*[\"']",
            fix=lambda s: re.sub(
                r"^KAGGLE_MODEL_HANDLE\s*=\s*[\"'][^\"'\n]*[\"']", "KAGGLE_MODEL_HANDLE = MODEL_ID", s, flags=re.M
            ),
            reason="KAGGLE_MODEL_HANDLE now follows MODEL_ID (parameters cell)",
        ),
    ),
    insert=("parameters", "install", "headless", "dsa_core", "dipg_tags", "dipg_data"),
    names={"TrainingInput": "peft_trainer.TrainingInput"},
    parameters={
        "MODEL_ID": "google/gemma-3/transformers/gemma-3-1b-it",
        "_DSA_EVAL_LABEL": "after SFT",
    },
    packages={
        "med_safety_eval": "openenv-dipg-safety==0.1.67",
        "yaml": "pyyaml",
        "pydantic": "pydantic",
        "requests": "requests",
        "numpy": "numpy",
        # tunix_sft_inputs masks with the HF fast tokenizer (offsets); Kaggle images ship it.
        "transformers": "transformers",
    },
)
