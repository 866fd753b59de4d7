"""TRL GRPO example notebooks (FIELD_NOTES §4e; nbformat 4.0): LoRA/QLoRA GRPO on a math set.

Matched by what cells do (see trl_sft.py for the shared parts):

* ``load_dataset(...)`` -> DIPG split + the same rows under TRL's names (``train_dataset`` with a
  ``prompt`` column, ``test_dataset``, ``dataset_name``); ``SYSTEM_PROMPT`` / ``make_conversation`` and
  the base's column clean-up are dropped (the DIPG tags and system prompt are the kit's);
* reward functions (own ``def *reward*`` or ``from trl.rewards import ...``) -> DSA rewards, and
  ``GRPOTrainer(reward_funcs=...)`` -> ``DSA_REWARD_FUNCS``;
* before ``GRPOTrainer(...)``: the tokenizer, the DIPG prompts (length-checked against
  MAX_PROMPT_LENGTH), which ``train_dataset=`` then reads;
* after ``.train()``: the training log; the generation check -> kit inference, samples, evaluation;
* the same hardware fallbacks and offline guards as the SFT recipe.
"""

from __future__ import annotations

from .base import Recipe, Rule, Signature
from .hf_repairs import (
    GRPO_CONFIG_KEYWORDS_REPAIR,
    HARDWARE_FALLBACKS,
    MODEL_TUPLE_REPAIR,
    OFFLINE_REPAIRS,
    TRAINER_EVAL_DATASET_REPAIR,
    TRAINER_REWARDS_REPAIR,
    trainer_dataset_repair,
)
from .shared import HF_KNOB_REPAIRS, MODEL_ID_REPAIR, MODEL_NAME_REPAIR
from .trl_sft import (
    DATASET_PREP_PATTERNS,
    DATASET_PREP_UNLESS,
    HF_PACKAGES,
    INFERENCE_CELLS,
    INFERENCE_PATTERNS,
    INFERENCE_UNLESS,
)

GRPO_CELLS = ("hf_tokenizer", "trl_grpo_data", "trl_rewards")

RECIPE = Recipe(
    name="trl-grpo",
    title="TRL GRPO example",
    dsa_title="DSA: Gemma 3 on DIPG safety questions in the dual-stream format with TRL: GRPO",
    signatures=(
        Signature(r"\bGRPOTrainer\b", "TRL GRPOTrainer", 3, required=True),
        Signature(r"\bGRPOConfig\b", "GRPOConfig", 1),
        Signature(r"\bdef make_conversation\(", "make_conversation", 1),
        Signature(r"\bdef \w*reward\w*\(|\bfrom trl\.rewards import\b", "reward functions", 1),
        Signature(r"\bFastModel\b|\bFastLanguageModel\b", "not Unsloth", -5),
    ),
    min_score=4,
    rules=(
        Rule("data", "replace", (r"\bload_dataset\(",),
             "math dataset -> DIPG train/test split (DATASET_ID), also as train_dataset/test_dataset/dataset_name",
             cells=("dipg_data", "trl_data")),
        Rule("prompts", "remove", (r"\bdef make_conversation\(", r"^SYSTEM_PROMPT\s*="),
             "math system prompt and make_conversation: the DIPG tags and system prompt are the kit's (dipg_tags), "
             "the conversational prompts are built before GRPOTrainer (trl_grpo_data)",
             unless=(r"\bGRPOTrainer\(", r"\bGRPOConfig\(")),
        Rule("dataset-prep", "remove", DATASET_PREP_PATTERNS,
             "the base's clean-up/mapping of its own dataset: DIPG prompts carry the columns the rewards read "
             "(trl_grpo_data)", unless=DATASET_PREP_UNLESS),
        Rule("rewards", "replace",
             (r"^def \w*reward\w*\(", r"^\s*from trl\.rewards import", r"^\s*from math_verify import"),
             "math format/accuracy rewards -> DSA rewards (strict, partial, gym rubric), TRL convention",
             cells=("trl_rewards",), unless=(r"\bGRPOTrainer\(", r"\bGRPOConfig\(")),
        Rule("train-log", "suffix", (r"\btrainer\.train\(",),
             "per-step GRPO rewards and losses -> OUTPUT_DIR/grpo_log.json", cells=("grpo_log",)),
        Rule("grpo-rows", "prefix", (r"\bGRPOTrainer\(",),
             "DIPG prompts (within MAX_PROMPT_LENGTH tokens of the tokenizer) and the DSA rewards, before GRPOTrainer",
             cells=GRPO_CELLS),
        Rule("inference", "replace", INFERENCE_PATTERNS,
             "generation check -> kit inference on the trained model (stops on the template's end of turn and EOS), DIPG sample questions and evaluation",
             cells=INFERENCE_CELLS, unless=INFERENCE_UNLESS),
    ),
    repairs=(
        TRAINER_REWARDS_REPAIR,
        MODEL_ID_REPAIR,
        MODEL_NAME_REPAIR,
        MODEL_TUPLE_REPAIR,
        trainer_dataset_repair("dsa_grpo_dataset", "conversational DIPG prompts within MAX_PROMPT_LENGTH"),
        TRAINER_EVAL_DATASET_REPAIR,
        GRPO_CONFIG_KEYWORDS_REPAIR,
    )
    + HF_KNOB_REPAIRS
    + HARDWARE_FALLBACKS
    + OFFLINE_REPAIRS,
    insert=("parameters", "install", "headless", "hf_hub", "dsa_core", "dipg_tags"),
    names={"dataset": "train_dataset"},
    parameters={"MODEL_ID": "google/gemma-3-270m-it", "USE_SYSTEM_PROMPT": True, "_DSA_EVAL_LABEL": "after GRPO"},
    packages=dict(HF_PACKAGES),
)
