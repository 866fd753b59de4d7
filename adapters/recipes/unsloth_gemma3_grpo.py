"""Unsloth GRPO notebooks (FIELD_NOTES §4c): Gemma 3 (1B) GRPO, Colab and Kaggle variants, and the same
family with a format pre-fine-tune before GRPO (Qwen3 GRPO: its own chat template and a math SFT).

Cells are matched by what they do:

* the first ``load_dataset(...)`` -> DIPG split and the GRPO prompt rows (``dataset`` with prompt, question,
  context and answer, so display cells such as ``dataset[0]["question"]`` show DIPG content); a later one
  (the GRPO half after an SFT stage) -> ``dataset`` is the prompt rows again;
* the tags / ``system_prompt`` cell is dropped: the kit's ``dipg_tags`` cell (inserted before the first code
  cell that needs it) defines the same names with the DIPG think/proof/answer format;
* a non-Gemma notebook keeps its model (MODEL_ID's default); its own chat template -> the one the kit picks at
  run time (Gemma-3's, the model's own, or plain ChatML), with a note; its template demos, length
  filters and conversation building for a format pre-fine-tune -> the kit's masked DIPG SFT rows;
* ``dataset.map`` to ``{"prompt": ...}`` is dropped (the prompt rows exist); a prompt-length quantile cell ->
  the kit's prompt budget (``maximum_length``);
* the four math rewards and their regex demos -> DSA rewards (TRL convention);
* the first SFT ``.train()`` -> training log (train_log.json), the GRPO one -> grpo_log.json; a ``TextStreamer`` / ``.generate`` / vLLM ``fast_generate`` cell
  before GRPO -> kit inference and sample questions, after GRPO -> the evaluation as well;
* hardware fallbacks (vLLM, ``save_lora``, 4-bit, GPU memory reports, stock-TRL GRPOConfig) change nothing
  on a GPU.
"""

from __future__ import annotations

from .base import Recipe, Rule, Signature
from .shared import HF_KNOB_REPAIRS, TRL_REWARD_LIST_REPAIR
from .unsloth_common import (
    CHAT_TEMPLATE_RULE,
    CONVERSION_RULE,
    DATA_MARKDOWN_RULE,
    EPOCHS_TO_STEPS_REPAIR,
    GRPO_COLUMN_REPAIR,
    GRPO_DATASET_REPAIR,
    GRPO_LOG_RULE,
    GRPO_STEPS_REPAIR,
    HARDWARE_REPAIRS,
    LENGTH_FILTER_RULE,
    MODEL_NAME_REPAIR,
    RESPONSES_ONLY_RULE,
    ROW_INDEX_REPAIR,
    SFT_DATASET_REPAIR,
    SFT_ROWS_RULE,
    TEMPLATE_DEMO_RULE,
    TEMPLATE_MARKDOWN_RULE,
    TRAIN_LOG_RULE,
    display_only,
    non_gemma_model,
)

RECIPE = Recipe(
    name="unsloth-gemma3-grpo",
    title="Unsloth GRPO (Gemma 3 1B Colab / Kaggle; with or without a format pre-fine-tune)",
    dsa_title="DSA: Gemma 3 on DIPG safety questions in the dual-stream format with Unsloth: GRPO",
    environment="unsloth",
    signatures=(
        Signature(r"\bFastModel\b|\bFastLanguageModel\b", "Unsloth FastModel", 2, required=True),
        Signature(r"\bGRPOTrainer\b", "TRL GRPOTrainer", 2, required=True),
        Signature(r"<start_working_out>|<SOLUTION>", "<start_working_out>/<SOLUTION> tags", 1),
        Signature(r"openai/gsm8k", "GSM8K load_dataset", 1),
        Signature(r"completion\[0\]\[[\"']content[\"']\]", "conversational completions in rewards", 1),
    ),
    min_score=5,
    rules=(
        Rule("data", "replace", (r"\bload_dataset\(",),
             "math dataset -> DIPG train/test split (DATASET_ID) and the GRPO prompt rows (`dataset`: prompt, "
             "question, context, answer)",
             cells=("dipg_data", "trl_grpo_data"),
             after=r"\.train\(", cells_after=("grpo_rows_again",)),
        Rule("gsm8k-helpers", "remove", (r"\bdef extract_hash_answer\(",), "GSM8K answer extraction: no DIPG use"),
        Rule("tags", "remove", (r"^reasoning_start\s*=", r"^system_prompt\s*="),
             "<start_working_out>/<SOLUTION> tags and system_prompt -> kit cell dipg_tags (DIPG think/proof/answer "
             "tags under the same names, before the first cell that reads them)"),
            TEMPLATE_MARKDOWN_RULE,
        CHAT_TEMPLATE_RULE,
        TEMPLATE_DEMO_RULE,
        Rule("format-demo", "remove", (r"\bmatch_(format|numbers)\.(search|findall|match)\(",),
             "check of the math answer-format regex on a sample string: the DSA format is checked by the kit's "
             "strict parser (parse_strict) in its rewards and evaluation",
             predicate=lambda source: display_only(source) or source.lstrip().startswith("print(")),
        DATA_MARKDOWN_RULE,
        CONVERSION_RULE,
        LENGTH_FILTER_RULE,
        Rule("prompt-budget", "replace", (r"\bquantile\(", r"apply_chat_template\(\s*\w+\[[\"']prompt[\"']\]"),
             "prompt-length quantile filter -> the kit's prompt budget (prompts over MAX_PROMPT_LENGTH are already "
             "left out; maximum_length = the longest kept prompt)",
             cells=("grpo_prompt_budget",), unless=(r"\.train\(",)),
        SFT_ROWS_RULE,
        RESPONSES_ONLY_RULE,
        Rule("prompts", "remove", (r"\.map\((?s:.*)[\"']prompt[\"']\s*:",),
             "math prompt/answer mapping: the kit's GRPO prompt rows (kit cell trl_grpo_data, above) carry prompt, "
             "question, context and answer",
             unless=(r"\.train\(",)),
        Rule("rewards", "replace",
             (r"\bdef (match_format_exactly|match_format_approximately|check_answer|check_numbers)\(",
              r"^match_format\s*=", r"^match_numbers\s*="),
             "math/format rewards -> DSA rewards (strict, partial, gym rubric), TRL convention",
             cells=("trl_rewards",)),
        Rule("grpo-config-compat", "prefix", (r"(?<![\w.])GRPOConfig\(",),
             "dsa_trl_config: GRPOConfig keywords this TRL lacks are dropped; without CUDA the batch holds whole "
             "groups of num_generations",
             cells=("trl_config_compat",)),
        GRPO_LOG_RULE,
        TRAIN_LOG_RULE,
        Rule("inference", "replace", (r"\bTextStreamer\b", r"\.generate\(", r"\.fast_generate\("),
             "free-form / vLLM inference -> kit inference (stops on the template's end of turn and EOS) and DIPG sample questions (their strict "
             "format verdict checks the pre-fine-tune); after GRPO the DIPG evaluation too",
             cells=("hf_inference", "sample_questions"), unless=(r"\.train\(",),
             after=r"\bGRPOTrainer\(", cells_after=("hf_inference", "sample_questions", "evaluate")),
    ),
    repairs=(
        TRL_REWARD_LIST_REPAIR,
        MODEL_NAME_REPAIR,
        GRPO_STEPS_REPAIR,
        EPOCHS_TO_STEPS_REPAIR,
        SFT_DATASET_REPAIR,
        GRPO_DATASET_REPAIR,
        ROW_INDEX_REPAIR,
        GRPO_COLUMN_REPAIR,
    )
    + HARDWARE_REPAIRS
    + HF_KNOB_REPAIRS,
    insert=("parameters", "install", "headless", "dsa_core", "dipg_tags"),
    names={},
    model_default=non_gemma_model,
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
