"""Unsloth Gemma 3 SFT (4B / 270M; FIELD_NOTES §4d; nbformat 4.4): FineTome / ChessInstruct.

The non-GSM8K dataset cells (``load_dataset``, ``standardize_data_formats``, the
``formatting_prompts_func`` with ``.removeprefix('<bos>')``) -> DIPG rows pre-tokenized with the
token-exact mask; ``train_on_responses_only(...)`` is removed (the mask already trains only the reply,
and current unsloth-zoo raises when both parts are passed); the chat demo -> kit inference, sample
questions and evaluation. Literal knobs and the model name follow the parameters cell.
"""

from __future__ import annotations

from .base import Recipe, Rule, Signature
from .shared import HF_KNOB_REPAIRS, MODEL_NAME_REPAIR

RECIPE = Recipe(
    name="unsloth-gemma3-sft",
    title="Unsloth Gemma 3 SFT",
    signatures=(
        Signature(r"\bFastModel\b|\bFastLanguageModel\b", "Unsloth FastModel", 2, required=True),
        Signature(r"\bSFTTrainer\b", "TRL SFTTrainer", 2, required=True),
        Signature(r"\btrain_on_responses_only\b", "train_on_responses_only", 1),
        Signature(r"\bget_chat_template\(", "get_chat_template(tokenizer, 'gemma-3')", 1),
        Signature(r"\bGRPOTrainer\b", "no GRPOTrainer", -5),
    ),
    min_score=5,
    rules=(
        Rule("data", "replace", (r"\bload_dataset\(",), "instruction dataset -> DIPG train/test split (DATASET_ID)",
             cells=("dipg_data",)),
        Rule("standardize", "remove", (r"\bstandardize_data_formats\b|\bstandardize_sharegpt\b",),
             "ShareGPT standardisation: DIPG rows are already role/content messages"),
        Rule("formatting", "replace", (r"\bdef formatting_prompts_func\(", r"\.removeprefix\("),
             "text formatting (template rendered, <bos> stripped) -> DIPG rows with the token-exact mask",
             cells=("trl_sft_data",), unless=(r"\.generate\(",)),
        Rule("peek", "remove", (r"^dataset\[\d+\]\[[\"']text[\"']\]\s*$", r"\btrain_dataset\[\d+\]\[[\"']labels[\"']\]"),
             "peek at one formatted row: the data cell prints row and trained-token counts"),
        Rule("responses-only", "remove", (r"\btrain_on_responses_only\(",),
             "train_on_responses_only: the token-exact mask already trains only the reply (and unsloth-zoo "
             "raises when instruction_part/response_part are passed to a tokenizer that knows them)"),
        Rule("inference", "replace", (r"\.generate\(",),
             "chat demo -> kit inference (stop 106+1), DIPG sample questions and evaluation",
             cells=("hf_inference", "sample_questions", "evaluate"), unless=(r"\.train\(",)),
    ),
    repairs=(MODEL_NAME_REPAIR,) + HF_KNOB_REPAIRS,
    insert=("parameters", "install", "headless", "dsa_core", "dipg_tags"),
    names={},
    parameters={"MODEL_ID": "unsloth/gemma-3-270m-it", "_DSA_EVAL_LABEL": "after SFT"},
    packages={
        "med_safety_eval": "openenv-dipg-safety==0.1.67",
        "yaml": "pyyaml",
        "pydantic": "pydantic",
        "requests": "requests",
        "numpy": "numpy",
    },
)
