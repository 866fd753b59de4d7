"""Tunix GRPO demo (FIELD_NOTES §4b): ``examples/grpo_demo.ipynb`` (<= v0.1.3, Gemma 2) and its
successor ``grpo_gemma.ipynb`` (Gemma 3 1B), GRPO with LoRA on GSM8K.

GSM8K from TFDS or a Kaggle CSV chosen by ``source = input(...)`` -> DIPG prompts (rendered as the
kit renders them, pre-filled with ``<think>``); the ``TEMPLATE``/tags cell -> DIPG tags (the system
prompt is used: this notebook has no SFT half to teach the format); the four math/format rewards ->
DSA rewards in Tunix's string convention; the evaluation -> strict format + gym rubric, before and
after training. Repairs: ``RLEngine`` (Tunix main) -> ``RLCluster`` (0.1.7), ``grpo_config=`` ->
``algo_config=``, stop tokens without 106, a ``MAX_PROMPT_LENGTH`` that cuts haystack prompts.
"""

from __future__ import annotations

from .base import Recipe, Rule, Signature
from .shared import (
    EOS_REPAIR,
    EVAL_CALL_RULE,
    GRPO_CONFIG_KEYWORD_REPAIR,
    GRPO_IMPORTS_REPAIR,
    GSM8K_PATH_REPAIR,
    RL_ENGINE_REPAIR,
    TUNIX_PIN_REPAIR,
    TUNIX_REWARD_LIST_REPAIR,
)

RECIPE = Recipe(
    name="tunix-grpo-demo",
    title="Tunix GRPO demo (grpo_demo / grpo_gemma)",
    signatures=(
        Signature(r"\bTEMPLATE\s*=", "TEMPLATE with {system_prompt}/{question}", 1),
        Signature(r"\bdef get_dataset\(", "get_dataset(data_dir, split, source)", 2),
        Signature(r"\bGRPOLearner\b", "GRPOLearner", 2, required=True),
        Signature(r"\bdef match_format_exactly\(", "reward match_format_exactly", 1),
        Signature(r"\bdef check_numbers\(", "reward check_numbers", 1),
        Signature(r"\b(RLCluster|RLEngine)\b", "RLCluster / RLEngine", 1),
        Signature(r"\bpeft_trainer\b|\bKAGGLE_MODEL_HANDLE\b", "no SFT half (PeftTrainer absent)", -5),
    ),
    min_score=5,
    rules=(
        Rule("download", "replace", (r"\bkagglehub\.model_download\(",), "kagglehub download of a fixed checkpoint",
             cells=("model_path",)),
        Rule("evaluation", "replace", (r"^def evaluate\(",),
             "GSM8K accuracy evaluation -> strict format + gym rubric on DIPG test rows (baseline run)",
             cells=("evaluate",)),
        EVAL_CALL_RULE,
        Rule("grpo-data", "replace", (r"^\s*source\s*=\s*input\(", r"\bget_dataset\(\s*TRAIN_DATA_DIR"),
             "GSM8K source prompt (input()) and loaders -> DIPG prompts pre-filled with <think>",
             cells=("dipg_data", "tunix_grpo_data")),
        Rule("gsm8k-helpers", "remove", (r"\bdef get_dataset\(", r"\bdef download_kaggle_dataset\(", r"\bdef extract_hash_answer\("),
             "GSM8K download/extract helpers: DIPG rows come from DATASET_ID"),
        Rule("tags", "replace", (r"^reasoning_start\s*=",),
             "reasoning/answer tags, SYSTEM_PROMPT and TEMPLATE -> DIPG think/proof/answer tags", cells=("dipg_tags",)),
        Rule("inference", "replace", (r"\bsampler_lib\.Sampler\(",),
             "sampler with TEMPLATE prompts -> core prompt, <think> pre-fill, stop 106+1",
             cells=("tunix_inference", "sample_questions")),
        Rule("rewards", "replace",
             (r"\bdef (match_format_exactly|match_format_approximately|check_answer|check_numbers)\(", r"^match_format\s*=",
              r"^match_numbers\s*="),
             "math/format rewards -> DSA rewards (strict, partial, gym rubric)", cells=("tunix_rewards",)),
    ),
    repairs=(
        TUNIX_PIN_REPAIR,
        RL_ENGINE_REPAIR,
        GRPO_CONFIG_KEYWORD_REPAIR,
        GRPO_IMPORTS_REPAIR,
        EOS_REPAIR,
        TUNIX_REWARD_LIST_REPAIR,
        GSM8K_PATH_REPAIR,
    ),
    insert=("parameters", "install", "headless", "dsa_core", "dipg_tags"),
    names={"gemma3": "lora_policy", "local_model_path": "kaggle_ckpt_path"},
    parameters={
        "MODEL_ID": "google/gemma-3/flax/gemma3-1b-it",
        "USE_SYSTEM_PROMPT": True,
        "_DSA_EVAL_LABEL": "before GRPO",
    },
    packages={
        "med_safety_eval": "openenv-dipg-safety==0.1.67",
        "yaml": "pyyaml",
        "pydantic": "pydantic",
        "requests": "requests",
        "numpy": "numpy",
    },
)
