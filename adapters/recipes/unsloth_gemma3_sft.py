"""Unsloth Gemma 3 SFT (4B / 270M; FIELD_NOTES §4d; nbformat 4.4): FineTome, ChessInstruct, ...

Cells are matched by what they do: ``load_dataset(...)`` -> DIPG split and ``dataset`` = the DIPG train
conversations (``conversations`` / ``messages``, so display cells such as ``dataset[100]`` show DIPG rows);
the conversion of the base's own columns to conversations (``standardize_data_formats``, ``convert_to_chatml``)
is dropped; the formatting cell (template rendered, ``.removeprefix('<bos>')``) -> DIPG rows pre-tokenized with
the token-exact mask; ``train_on_responses_only(...)`` is removed (the mask already trains only the reply, and
current unsloth-zoo raises when both parts are passed); the first ``.train()`` -> training log; the chat demo
-> kit inference, sample questions and evaluation. Literal knobs and the model name follow the parameters
cell; GPU memory reports, 4-bit and 8-bit optimisers get hardware fallbacks (unchanged on a GPU).
"""

from __future__ import annotations

from .base import Recipe, Rule, Signature
from .shared import HF_KNOB_REPAIRS
from .unsloth_common import (
    CONVERSION_RULE,
    DATA_MARKDOWN_RULE,
    EPOCHS_TO_STEPS_REPAIR,
    HARDWARE_REPAIRS,
    LENGTH_FILTER_RULE,
    MODEL_NAME_REPAIR,
    RESPONSES_ONLY_RULE,
    ROW_INDEX_REPAIR,
    SFT_DATASET_REPAIR,
    SFT_ROWS_RULE,
    TEMPLATE_DEMO_RULE,
    TRAIN_LOG_RULE,
)

RECIPE = Recipe(
    name="unsloth-gemma3-sft",
    title="Unsloth Gemma 3 SFT",
    dsa_title="DSA: Gemma 3 on DIPG safety questions in the dual-stream format with Unsloth: SFT",
    environment="unsloth",
    signatures=(
        Signature(r"\bFastModel\b|\bFastLanguageModel\b", "Unsloth FastModel", 2, required=True),
        Signature(r"\bSFTTrainer\b", "TRL SFTTrainer", 2, required=True),
        Signature(r"\btrain_on_responses_only\b", "train_on_responses_only", 1),
        Signature(r"\bget_chat_template\(", "get_chat_template(tokenizer, 'gemma-3')", 1),
        Signature(r"\bGRPOTrainer\b", "no GRPOTrainer", -5),
    ),
    min_score=5,
    rules=(
        Rule("data", "replace", (r"\bload_dataset\(",),
             "instruction dataset -> DIPG train/test split (DATASET_ID) and `dataset` = the DIPG train "
             "conversations", cells=("dipg_data", "unsloth_rows")),
        DATA_MARKDOWN_RULE,
        CONVERSION_RULE,
        TEMPLATE_DEMO_RULE,
        LENGTH_FILTER_RULE,
        SFT_ROWS_RULE,
        Rule("peek", "remove", (r"^dataset\[[^\]]+\]\[[\"']text[\"']\]\s*$", r"\btrain_dataset\[[^\]]+\]\[[\"']labels[\"']\]"),
             "peek at one formatted row's text / labels: the SFT rows cell prints row and trained-token counts "
             "(the kit's rows carry input_ids and completion_mask, no text or labels)"),
        RESPONSES_ONLY_RULE,
        TRAIN_LOG_RULE,
        Rule("inference", "replace", (r"\.generate\(", r"\bTextStreamer\b"),
             "chat demo -> kit inference (stops on the template's end of turn and EOS), DIPG sample questions and evaluation",
             cells=("hf_inference", "sample_questions", "evaluate"), unless=(r"\.train\(",)),
    ),
    repairs=(MODEL_NAME_REPAIR, EPOCHS_TO_STEPS_REPAIR, SFT_DATASET_REPAIR, ROW_INDEX_REPAIR)
    + HARDWARE_REPAIRS
    + HF_KNOB_REPAIRS,
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
