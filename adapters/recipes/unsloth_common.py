"""Rules and repairs both Unsloth recipes use, found by what a cell does (calls, assignments), not its text.

Unsloth's notebooks share their shape whatever the model: ``FastModel`` / ``FastLanguageModel`` loading,
LoRA, a data cell, a formatting cell, ``SFTTrainer`` and/or ``GRPOTrainer``, display cells that peek at
``dataset[N]``, GPU memory reports, a ``TextStreamer`` or vLLM (``fast_generate``) demo and saving cells.
Real ones differ from the look-alikes in cell boundaries, in a format pre-fine-tune before GRPO (Qwen3
GRPO: its own chat template and a math SFT), in vLLM (``fast_inference=True``, ``SamplingParams``,
``save_lora``) and in keywords stock TRL 1.x no longer takes (``max_prompt_length``, ``warmup_ratio``).

Hardware fallbacks here (reasons start ``hardware fallback:``) change nothing where CUDA is present.
"""

from __future__ import annotations

import ast
import re

from .base import Rule
from .hf_repairs import (
    CUDA_DEVICE_FALLBACK,
    GPU_MEMORY_FALLBACK,
    HALF_DTYPE_FALLBACK,
    OPTIM_FALLBACK,
    QUANTIZATION_FALLBACK,
    TRAINING_FLAGS_FALLBACK,
)
from .source_edits import call_name, calls, edit_repair, parse, segment, span

# ------------------------------------------------------------------------------------------ helpers


def display_only(source: str) -> bool:
    """Every top-level statement is a bare expression (a cell that only shows something)."""
    tree = parse(source)
    return bool(tree and tree.body) and all(isinstance(stmt, ast.Expr) for stmt in tree.body)


def has_sft_stage(code: str) -> bool:
    return re.search(r"\bSFTTrainer\(", code) is not None


# ------------------------------------------------------------------------------------- the model


def _saved_folders(code: str) -> set[str]:
    """Folders the notebook saves a model into (a later ``from_pretrained("gemma_3_lora")`` reloads one)."""
    return set(re.findall(r"\.save_(?:pretrained|lora|pretrained_merged)\(\s*[\"']([^\"']+)[\"']", code))


def _model_literals(tree) -> list[ast.Constant]:
    """String literals naming the model: ``from_pretrained(model_name="...")`` and ``model_name = "..."``."""
    found = []
    for call in calls(tree, "from_pretrained"):
        found += [k.value for k in call.keywords if k.arg == "model_name"]
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "model_name" for t in stmt.targets):
            found.append(stmt.value)
    return [v for v in found if isinstance(v, ast.Constant) and isinstance(v.value, str)]


def _find_model_names(source, tree, code):
    saved = _saved_folders(code)
    return [(*span(source, value), "MODEL_ID") for value in _model_literals(tree) if value.value not in saved]


def notebook_model(cells: list[str]) -> str | None:
    """The model a base notebook (its code cells) loads: the first ``model_name`` literal that is not a folder
    it saves to."""
    saved = _saved_folders("\n".join(cells))
    for source in cells:
        tree = parse(source)
        names = [v.value for v in (_model_literals(tree) if tree else []) if v.value not in saved]
        if names:
            return names[0]
    return None


def non_gemma_model(cells: list[str]) -> str | None:
    """The notebook's own model when it is not a Gemma one (it stays MODEL_ID's default), else None."""
    name = notebook_model(cells)
    return name if name and "gemma" not in name.lower() else None


def _model_reason(source: str, code: str) -> str:
    tree = parse(source)
    names = [v.value for v in (_model_literals(tree) if tree else [])]
    foreign = [n for n in names if "gemma" not in n.lower() and n not in _saved_folders(code)]
    if foreign:
        return (f"non-Gemma model {foreign[0]} -> MODEL_ID (parameters cell; its default is this notebook's own "
                f"{foreign[0]}: the kit renders, masks and stops with the model's chat template)")
    return "hard-coded model_name -> MODEL_ID (parameters cell)"


MODEL_NAME_REPAIR = edit_repair(
    "unsloth_model_name",
    r"\bmodel_name\s*=\s*[\"']",
    _find_model_names,
    "hard-coded model_name -> MODEL_ID (parameters cell)",
    describe=_model_reason,
    sees_notebook=True,
)

# --------------------------------------------------------------------------------- hardware fallbacks


def _find_true_keyword(keyword_name: str, call_names: tuple[str, ...] = ()):
    def finder(source, tree, _code):
        edits = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and (not call_names or call_name(node) in call_names):
                for keyword in node.keywords:
                    if keyword.arg == keyword_name and isinstance(keyword.value, ast.Constant) and keyword.value.value is True:
                        edits.append((*span(source, keyword.value), "True and DSA_HAS_CUDA"))
        return edits

    return finder


FAST_INFERENCE_FALLBACK = edit_repair(
    "hw_fast_inference",
    r"\bfast_inference\s*=\s*True\b",
    _find_true_keyword("fast_inference"),
    "hardware fallback: fast_inference=True (vLLM) needs CUDA; without it the model loads for HF generation "
    "(fast_inference = True and DSA_HAS_CUDA) and GRPO generates with transformers (use_vllm stays off, "
    "unslothai/unsloth#2107)",
    sees_notebook=True,
)

USE_VLLM_FALLBACK = edit_repair(
    "hw_use_vllm",
    r"\buse_vllm\s*=\s*True\b",
    _find_true_keyword("use_vllm"),
    "hardware fallback: use_vllm=True needs CUDA and a vLLM engine; without them GRPO generates with "
    "transformers (use_vllm = True and DSA_HAS_CUDA)",
    sees_notebook=True,
)


def _find_vllm_setup(source, tree, _code):
    """``from vllm import X`` at top level -> under ``if DSA_HAS_CUDA:``; ``v = SamplingParams(...)`` ->
    ``... if DSA_HAS_CUDA else None`` (a cell that configures GRPO keeps running without vLLM)."""
    edits = []
    imported = set()
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            module = stmt.module if isinstance(stmt, ast.ImportFrom) else stmt.names[0].name
            if module and module.split(".")[0] == "vllm":
                start, end = span(source, stmt)
                text = source[start:end]
                edits.append((start, end, f"if DSA_HAS_CUDA:  # vLLM needs CUDA\n    {text}"))
                imported |= {(a.asname or a.name).split(".")[0] for a in stmt.names}
        elif (
            isinstance(stmt, ast.Assign)
            and isinstance(stmt.value, ast.Call)
            and (call_name(stmt.value) in imported or call_name(stmt.value) == "SamplingParams")
        ):
            start, end = span(source, stmt.value)
            edits.append((start, end, f"{source[start:end]} if DSA_HAS_CUDA else None"))
    return edits


VLLM_SETUP_FALLBACK = edit_repair(
    "hw_vllm_setup",
    r"^(from\s+vllm\b|import\s+vllm\b)",
    _find_vllm_setup,
    "hardware fallback: vLLM needs CUDA; without it the vLLM import is skipped and its SamplingParams are "
    "None (GRPO samples with transformers), the rest of the cell runs as written",
    sees_notebook=True,
)


def _find_save_lora(source, tree, _code):
    edits = []
    for call in calls(tree, "save_lora"):
        func = call.func
        if isinstance(func, ast.Attribute):
            owner = segment(source, func.value)
            edits.append((*span(source, func), f"({owner}.save_lora if DSA_HAS_CUDA else {owner}.save_pretrained)"))
    return edits


SAVE_LORA_FALLBACK = edit_repair(
    "hw_save_lora",
    r"\.save_lora\(",
    _find_save_lora,
    "hardware fallback: model.save_lora comes with the vLLM engine (fast_inference, CUDA); without it the "
    "LoRA adapter is saved with save_pretrained (the same adapter_model.safetensors)",
    sees_notebook=True,
)


def _find_grpo_config(source, tree, _code):
    edits = []
    for call in calls(tree, "GRPOConfig"):
        if isinstance(call.func, ast.Name):
            start, end = span(source, call.func)
            paren = source.index("(", end)
            edits.append((start, paren + 1, "dsa_trl_config(GRPOConfig, "))
    return edits


GRPO_CONFIG_COMPAT = edit_repair(
    "hw_grpo_config",
    r"(?<![\w.])GRPOConfig\(",
    _find_grpo_config,
    "hardware fallback: without CUDA Unsloth runs stock TRL, whose GRPOConfig lacks keywords Unsloth's "
    "notebooks pass (max_prompt_length, warmup_ratio, vllm_sampling_params): GRPOConfig(...) -> "
    "dsa_trl_config(GRPOConfig, ...), which drops only what this TRL rejects (warmup_ratio -> warmup_steps) "
    "and makes the batch a multiple of num_generations, as Unsloth does on GPU",
    sees_notebook=True,
)

HARDWARE_REPAIRS = (
    FAST_INFERENCE_FALLBACK,
    USE_VLLM_FALLBACK,
    VLLM_SETUP_FALLBACK,
    SAVE_LORA_FALLBACK,
    GRPO_CONFIG_COMPAT,
    GPU_MEMORY_FALLBACK,
    QUANTIZATION_FALLBACK,
    HALF_DTYPE_FALLBACK,
    TRAINING_FLAGS_FALLBACK,
    OPTIM_FALLBACK,
    CUDA_DEVICE_FALLBACK,
)

# ------------------------------------------------------------------------------------ run length


def _find_grpo_steps(source, tree, code):
    target = "GRPO_MAX_STEPS" if has_sft_stage(code) else "MAX_STEPS"
    edits = []
    for call in calls(tree, "GRPOConfig"):
        for keyword in call.keywords:
            if keyword.arg == "max_steps" and isinstance(keyword.value, ast.Constant):
                edits.append((*span(source, keyword.value), target))
    return edits


GRPO_STEPS_REPAIR = edit_repair(
    "grpo_max_steps",
    r"\bGRPOConfig\(",
    _find_grpo_steps,
    "GRPO max_steps literal -> the parameters cell",
    describe=lambda source, code: "GRPO max_steps literal -> "
    + ("GRPO_MAX_STEPS (parameters cell; the SFT stage before it takes MAX_STEPS)" if has_sft_stage(code)
       else "MAX_STEPS (parameters cell; GRPO is this notebook's only training stage)"),
    sees_notebook=True,
)


def _find_epochs_only(source, tree, _code):
    edits = []
    for call in calls(tree, "SFTConfig", "GRPOConfig", "TrainingArguments"):
        names = {k.arg for k in call.keywords}
        if "num_train_epochs" in names and "max_steps" not in names:
            keyword = next(k for k in call.keywords if k.arg == "num_train_epochs")
            end = span(source, keyword.value)[1]
            edits.append((end, end, ", max_steps = MAX_STEPS"))
    return edits


EPOCHS_TO_STEPS_REPAIR = edit_repair(
    "epochs_max_steps",
    r"\bnum_train_epochs\s*=",
    _find_epochs_only,
    "training length by epochs only -> max_steps = MAX_STEPS added (parameters cell; max_steps wins over "
    "num_train_epochs)",
    sees_notebook=True,
)


def _trainer_dataset(trainer: str, dataset: str):
    def finder(source, tree, _code):
        edits = []
        for call in calls(tree, trainer):
            for keyword in call.keywords:
                if keyword.arg == "train_dataset" and segment(source, keyword.value) != dataset:
                    edits.append((*span(source, keyword.value), dataset))
        return edits

    return finder


SFT_DATASET_REPAIR = edit_repair(
    "sft_train_dataset",
    r"\bSFTTrainer\(",
    _trainer_dataset("SFTTrainer", "dsa_sft_dataset"),
    "SFTTrainer reads the kit's masked DIPG rows (dsa_sft_dataset)",
    sees_notebook=True,
)
GRPO_DATASET_REPAIR = edit_repair(
    "grpo_train_dataset",
    r"\bGRPOTrainer\(",
    _trainer_dataset("GRPOTrainer", "dsa_grpo_dataset"),
    "GRPOTrainer reads the DIPG prompts (dsa_grpo_dataset)",
    sees_notebook=True,
)

# ------------------------------------------------------------------------------------ display cells

_DATASET_EXPR = re.compile(r"^[\w.]*dataset\w*(\[[^\]]*\])*$", re.IGNORECASE)


def _find_row_index(source, tree, _code):
    """``dataset[100]`` in a display cell -> ``dataset[min(100, len(dataset) - 1)]`` (small DIPG runs)."""
    if not all(isinstance(stmt, ast.Expr) for stmt in tree.body):
        return []
    edits = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.slice, ast.Constant)
            and type(node.slice.value) is int
            and node.slice.value > 0
        ):
            base = segment(source, node.value)
            if _DATASET_EXPR.match(base):
                edits.append((*span(source, node.slice), f"min({node.slice.value}, len({base}) - 1)"))
    return edits


ROW_INDEX_REPAIR = edit_repair(
    "display_row_index",
    r"dataset\w*\[\s*[1-9]\d*\s*\]",
    _find_row_index,
    "display of row N -> the last DIPG row when there are fewer (MAX_TRAIN_ROWS and the length limit keep "
    "few rows in small runs)",
    sees_notebook=True,
)

# Columns of the kit's GRPO prompt rows (prompt, question, context, answer) under the base's names.
GRPO_COLUMN_SYNONYMS = {"solution": "answer", "expected_answer": "answer", "problem": "question"}


def _find_columns(source, tree, _code):
    if not all(isinstance(stmt, ast.Expr) for stmt in tree.body):
        return []
    edits = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.slice, ast.Constant)
            and node.slice.value in GRPO_COLUMN_SYNONYMS
            and re.match(r"^\w*dataset\w*\b", segment(source, node.value))
        ):
            quote = source[span(source, node.slice)[0]]
            edits.append((*span(source, node.slice), f"{quote}{GRPO_COLUMN_SYNONYMS[node.slice.value]}{quote}"))
    return edits


GRPO_COLUMN_REPAIR = edit_repair(
    "display_grpo_column",
    r"[\"'](" + "|".join(GRPO_COLUMN_SYNONYMS) + r")[\"']",
    _find_columns,
    "display of a math column -> its DIPG prompt-row column (solution -> answer: the gold reply; problem -> "
    "question)",
    sees_notebook=True,
)

# ------------------------------------------------------------------------------------------- rules

# A cell that renders the base's own chat template on its example conversation and only shows it.
TEMPLATE_DEMO_RULE = Rule(
    "template-demo", "remove", (r"\bapply_chat_template\(",),
    "display of the base's own chat template on its example conversation: the kit's template cell prints a "
    "DIPG prompt rendered with the template the run uses",
    predicate=display_only,
)

# A cell that converts the base's own columns into conversations (ShareGPT standardisation, `to chatml`).
CONVERSION_RULE = Rule(
    "conversion", "remove",
    (r"\bstandardize_(data_formats|sharegpt)\b", r"[\"']conversations[\"']\s*:"),
    "conversion of the base's own columns to role/content conversations: the DIPG rows already are "
    "conversations (the kit's `dataset` has `conversations` and `messages`)",
    unless=(r"\bapply_chat_template\(", r"\.removeprefix\(", r"\bdef formatting_prompts_func\(", r"\.train\(",
            r"\.generate\("),
)

# The SFT rows: the formatting cell (template rendered, <bos> stripped), or building assistant turns from the
# base's columns (Qwen3 GRPO's format pre-fine-tune), or the text column / pandas -> Dataset step.
SFT_ROWS_RULE = Rule(
    "sft-rows", "replace",
    (r"\bdef format_sft_example\(", r"\.removeprefix\(", r"\bdef formatting_prompts_func\(",
     r"[\"']role[\"']\s*:\s*[\"']assistant[\"']", r"\bDataset\.from_pandas\(", r"^\w+\[[\"']text[\"']\]\s*="),
    "SFT rows (the base's conversations rendered to text with its template) -> DIPG rows with the token-exact "
    "mask (loss on the reply and its end-of-turn token only)",
    cells=("trl_sft_data",),
    unless=(r"\.generate\(", r"\.fast_generate\(", r"\.train\(", r"\bSFTTrainer\(", r"\bGRPOTrainer\("),
)

# A filter of the base's rows by token length (they are rendered with its template).
LENGTH_FILTER_RULE = Rule(
    "length-filter", "remove", (r"\blen\(\s*\w+\.apply_chat_template\(",),
    "token-length filter of the base's rows: the kit drops rows longer than MAX_SEQ_LENGTH when it masks "
    "them (never cut)",
)

RESPONSES_ONLY_RULE = Rule(
    "responses-only", "remove", (r"\btrain_on_responses_only\(",),
    "train_on_responses_only: the token-exact mask already trains only the reply (and unsloth-zoo raises "
    "when instruction_part/response_part are passed to a tokenizer that knows them)",
)

# The first SFT training (a `.train(` call in a cell that builds no GRPOTrainer): its losses.
TRAIN_LOG_RULE = Rule(
    "train-log", "suffix", (r"\b\w*trainer\.train\(",),
    "per-step SFT losses and trained-token share -> OUTPUT_DIR/train_log.json",
    cells=("hf_trained_trainer", "hf_train_log"),
    unless=(r"\bGRPOTrainer\(",),
)

# The GRPO training (GRPOTrainer built and trained in one cell, as Unsloth's notebooks do): steps and rewards.
GRPO_LOG_RULE = Rule(
    "grpo-log", "suffix", (r"\bGRPOTrainer\((?s:.*)\.train\(",),
    "GRPO steps done with the DSA rewards (mean reward per step) -> OUTPUT_DIR/grpo_log.json",
    cells=("grpo_log",),
)

# A markdown cell about the base's own chat template (not Gemma-3's).
TEMPLATE_MARKDOWN_RULE = Rule(
    "template-markdown", "remove", (r"(?i)\bchat template\b",),
    "text about the base notebook's own chat template: the kit picks a template that can express the DIPG rows "
    "(see the kit's note)",
    unless=(r"(?i)gemma",),
    cell_types=("markdown",),
)

# A markdown cell introducing the base's dataset by its hub page (the kit's data note replaces the first).
DATA_MARKDOWN_RULE = Rule(
    "data-markdown", "replace", (r"huggingface\.co/datasets/",),
    "text about the base notebook's dataset -> a note on the DIPG rows that replace it",
    cells=("dipg_data_note",),
    cell_types=("markdown",),
)

# The base's own chat template assigned to the tokenizer (a non-Gemma notebook: Qwen3 GRPO's hand-written one
# for its math format) -> the template the kit can express DIPG rows with, chosen at run time.
CHAT_TEMPLATE_RULE = Rule(
    "chat-template", "replace", (r"\.chat_template\s*=(?!=)",),
    "the base notebook's own chat template (no turn markers; its generation prompt opens the math reasoning tag, "
    "so a DIPG reply is not written verbatim after it) -> at run time Gemma-3's for a Gemma model, else the "
    "model's own template when it expresses a DIPG row, else plain ChatML; the cell prints the template and "
    "stop tokens",
    cells=("chat_template_note", "chat_template_choice"),
)
