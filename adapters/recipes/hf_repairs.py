"""Repairs for Hugging Face / TRL notebooks, found by what the code does (``ast``), not by its text.

Three kinds, each a :class:`~adapters.recipes.base.Repair` any recipe can list:

* **hardware fallbacks** (reason starts ``hardware fallback:``): 4-bit/8-bit loading, half-precision
  dtypes, bf16/fp16 training flags, 8-bit/paged optimisers, Liger kernels, activation offloading,
  flash/hub attention kernels, ``"cuda"`` devices, GPU memory reports and vLLM cells. Each becomes
  ``(as written) if DSA_HAS_CUDA else (CPU value)`` (``DSA_HAS_BF16`` for bf16), so on a GPU the
  notebook runs as its authors wrote it. The flags come from the headless cell.
* **offline safety**: hub pushes run only where ``dsa_can_push()`` (a token, hub reachable);
  ``report_to`` keeps only trackers that import (``dsa_report_to``); a hub id built from the author's
  account and the local ``output_dir`` (``f"user/{output_dir}"``) is read from the local folder when it
  exists (``dsa_local_first``). The helpers live in ``adapters/cells/hf_hub.py``.
* **trainer wiring**: ``SFTTrainer(train_dataset=...)`` / ``GRPOTrainer(train_dataset=...)`` read the
  kit's DIPG rows, ``eval_dataset=`` is dropped, ``reward_funcs=`` becomes the DSA rewards, a hard-coded
  model id in a tuple assignment (``model_id, output_dir = "Qwen/...", "..."``) becomes ``MODEL_ID``.

Every edit is made on source offsets of the parsed cell (magic lines blanked first), and its result
no longer matches, so adapting an adapted notebook changes nothing.
"""

from __future__ import annotations

import ast
import re
import textwrap

from .base import Repair
from .source_edits import Edit, apply_edits, call_name, edit_repair, line_starts, parse, segment, span

_HALF = {"float16": "float16", "half": "float16", "fp16": "float16", "bfloat16": "bfloat16", "bf16": "bfloat16"}
_DTYPE_KEYS = ("dtype", "torch_dtype")
_GPU_MEMORY_CALLS = r"torch\.cuda\.(get_device_properties|max_memory_reserved|max_memory_allocated|memory_reserved|" \
    r"memory_allocated|mem_get_info|get_device_name|memory_summary|reset_peak_memory_stats)\("


# ------------------------------------------------------------------------------------ AST helpers


def _parents(tree: ast.AST) -> dict[int, ast.AST]:
    parents = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node
    return parents


def _gated(node: ast.AST, parents: dict[int, ast.AST]) -> bool:
    """Whether ``node`` already sits in a ``... if DSA_HAS_* else ...`` (a repair ran before)."""
    parent = parents.get(id(node))
    while parent is not None:
        if isinstance(parent, (ast.IfExp, ast.If)) and "DSA_HAS_" in ast.dump(parent.test):
            return True
        parent = parents.get(id(parent))
    return False


def _const(node: ast.AST, kind=None):
    if isinstance(node, ast.Constant) and (kind is None or isinstance(node.value, kind)):
        return node.value
    return None


# ------------------------------------------------------------------------------- hardware fallbacks


def _find_bnb(source: str, tree: ast.Module) -> list[Edit]:
    parents = _parents(tree)
    edits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and call_name(node) == "BitsAndBytesConfig" and not _gated(node, parents):
            start, end = span(source, node)
            edits.append((start, end, f"({source[start:end]} if DSA_HAS_CUDA else None)"))
        elif isinstance(node, ast.Call) and call_name(node) != "BitsAndBytesConfig" and not _gated(node, parents):
            for keyword in node.keywords:
                if keyword.arg in ("load_in_4bit", "load_in_8bit") and _const(keyword.value) is True:
                    start, end = span(source, keyword.value)
                    edits.append((start, end, "DSA_HAS_CUDA"))
    return edits


QUANTIZATION_FALLBACK = edit_repair(
    "hw_quantization",
    r"\bBitsAndBytesConfig\(|\bload_in_(4|8)bit\s*=\s*True",
    _find_bnb,
    "hardware fallback: 4-bit/8-bit quantization (bitsandbytes) needs CUDA; without it the model loads "
    "unquantized (quantization_config None), LoRA unchanged",
)


def _half_value(node: ast.AST) -> tuple[str, str] | None:
    """("float16"|"bfloat16", CPU replacement text) for a half-precision dtype literal, else None."""
    value = _const(node, str)
    if value is not None and value in _HALF:
        return _HALF[value], '"float32"'
    if isinstance(node, ast.Attribute) and node.attr in _HALF and isinstance(node.value, ast.Name):
        return _HALF[node.attr], f"{node.value.id}.float32"
    return None


def _dtype_edit(source: str, value: ast.AST) -> Edit | None:
    found = _half_value(value)
    if found is None:
        return None
    half, cpu = found
    flag = "DSA_HAS_BF16" if half == "bfloat16" else "DSA_HAS_CUDA"
    start, end = span(source, value)
    return (start, end, f"({source[start:end]} if {flag} else {cpu})")


def _find_half_dtypes(source: str, tree: ast.Module) -> list[Edit]:
    parents = _parents(tree)
    edits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and call_name(node) != "BitsAndBytesConfig":
            for keyword in node.keywords:
                if keyword.arg in _DTYPE_KEYS and not _gated(keyword.value, parents):
                    edit = _dtype_edit(source, keyword.value)
                    if edit:
                        edits.append(edit)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if key is not None and _const(key, str) in _DTYPE_KEYS and not _gated(value, parents):
                    edit = _dtype_edit(source, value)
                    if edit:
                        edits.append(edit)
    return edits


HALF_DTYPE_FALLBACK = edit_repair(
    "hw_half_dtype",
    r"(float16|bfloat16|\bhalf\b|bf16|fp16)",
    _find_half_dtypes,
    "hardware fallback: float16 weights need CUDA and bfloat16 a bf16 device; without them the model "
    "loads in float32",
)

# keyword -> (flag that allows the value as written, replacement test)
_FLAG_KEYWORDS = {
    "bf16": "DSA_HAS_BF16",
    "fp16": "DSA_HAS_CUDA",
    "tf32": "DSA_HAS_CUDA",
    "use_liger_kernel": "DSA_HAS_CUDA",
    "use_liger": "DSA_HAS_CUDA",
    "activation_offloading": "DSA_HAS_CUDA",
}


def _find_flags(source: str, tree: ast.Module) -> list[Edit]:
    parents = _parents(tree)
    edits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and not _gated(node, parents):
            for keyword in node.keywords:
                if keyword.arg in _FLAG_KEYWORDS and _const(keyword.value) is True:
                    start, end = span(source, keyword.value)
                    edits.append((start, end, _FLAG_KEYWORDS[keyword.arg]))
    return edits


TRAINING_FLAGS_FALLBACK = edit_repair(
    "hw_training_flags",
    r"\b(bf16|fp16|tf32|use_liger_kernel|use_liger|activation_offloading)\s*=\s*True",
    _find_flags,
    "hardware fallback: bf16/fp16/tf32 mixed precision, Liger kernels (Triton) and activation offloading "
    "need a GPU (bf16: a bf16 device); without one they are off",
)


# TRL's configs default to bf16=True (trl/trainer/base_config.py), which transformers refuses without a
# bf16 device ("Your setup doesn't support bf16/gpu"): a config that leaves it unset gets the flag.
TRL_CONFIGS = ("SFTConfig", "GRPOConfig", "DPOConfig", "KTOConfig", "ORPOConfig", "CPOConfig", "RLOOConfig",
               "GKDConfig", "OnlineDPOConfig", "RewardConfig", "PRMConfig")


def _find_trl_bf16_default(source: str, tree: ast.Module) -> list[Edit]:
    edits = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and call_name(node) in TRL_CONFIGS):
            continue
        names = {k.arg for k in node.keywords}
        if names & {"bf16", "fp16"} or None in names:  # set by the author, or hidden in **kwargs
            continue
        open_paren = span(source, node.func)[1]
        if source[open_paren] != "(":
            continue
        if source[open_paren + 1 : open_paren + 2] == "\n":
            text = "\n    bf16=DSA_HAS_BF16,  # DSA kit: TRL defaults to bf16, which needs a bf16 device"
        else:
            text = "bf16=DSA_HAS_BF16, "
        edits.append((open_paren + 1, open_paren + 1, text))
    return edits


TRL_BF16_DEFAULT_FALLBACK = edit_repair(
    "hw_trl_bf16_default",
    r"\b(" + "|".join(TRL_CONFIGS) + r")\(",
    _find_trl_bf16_default,
    "hardware fallback: TRL configs default to bf16=True, which needs a bf16 device; without one bf16=False "
    "(bf16=DSA_HAS_BF16)",
)


# What TRL lets a config switch off that costs CPU time each step (trl 1.16; benchmarks/bench_trl_step.py
# measures it on the real 270M): keyword -> why it is off (False) without CUDA. SFTTrainer's other per-step work over
# the 262k vocabulary has no switch: its fused LM head always computes entropy and top-1 accuracy for the
# logs (``add_fused_lm_head(outputs=("log_probs", "entropy", "is_top1"))``) and, without Triton (CPU),
# projects every position, prompt and padding included, not only the trained ones.
TRL_CPU_OFF = {
    "gradient_checkpointing": "TRL configs default to gradient_checkpointing=True, which runs every layer's forward "
    "twice per step to save GPU memory; on a CPU it only costs time",
}


# transformers 5.2x renamed gradient_checkpointing to activation_checkpointing (the old name an alias until v6).
_CPU_OFF_ALIASES = {"gradient_checkpointing": ("activation_checkpointing",)}


def _find_trl_cpu_settings(source: str, tree: ast.Module) -> list[Edit]:
    """TRL configs / TrainingArguments: each :data:`TRL_CPU_OFF` keyword -> ``DSA_HAS_CUDA`` (set to a
    constant True by the author, or left to TRL's default True); a config hiding keywords in ``**kwargs`` is
    left alone."""
    parents = _parents(tree)
    edits = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and call_name(node) in TRL_CONFIGS + ("TrainingArguments",)):
            continue
        if _gated(node, parents):
            continue
        given = {k.arg: k for k in node.keywords}
        if None in given:
            continue
        missing = []
        for key in TRL_CPU_OFF:
            names = (key, *_CPU_OFF_ALIASES.get(key, ()))
            for name in names:
                if name in given and _const(given[name].value) is True:
                    start, end = span(source, given[name].value)
                    edits.append((start, end, "DSA_HAS_CUDA"))
            if not any(name in given for name in names) and call_name(node) != "TrainingArguments":
                missing.append(key)  # TrainingArguments: transformers' own default is already off
        open_paren = span(source, node.func)[1]
        if not missing or source[open_paren] != "(":
            continue
        if source[open_paren + 1 : open_paren + 2] == "\n":
            text = "".join(f"\n    {key}=DSA_HAS_CUDA,  # DSA kit: TRL's default True only costs time on a CPU"
                           for key in missing)
        else:
            text = "".join(f"{key}=DSA_HAS_CUDA, " for key in missing)
        edits.append((open_paren + 1, open_paren + 1, text))
    return edits


TRL_CPU_SETTINGS_FALLBACK = edit_repair(
    "hw_trl_cpu_settings",
    r"\b(" + "|".join(TRL_CONFIGS + ("TrainingArguments",)) + r")\(",
    _find_trl_cpu_settings,
    "hardware fallback: " + "; ".join(f"{why}, so without CUDA it is off ({key}=DSA_HAS_CUDA)"
                                      for key, why in TRL_CPU_OFF.items())
    + " (benchmarks/results/trl_step.md)",
)


def _find_optim(source: str, tree: ast.Module) -> list[Edit]:
    parents = _parents(tree)
    edits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and not _gated(node, parents):
            for keyword in node.keywords:
                value = _const(keyword.value, str)
                if keyword.arg == "optim" and value and re.search(r"8bit|bnb|paged|4bit", value):
                    start, end = span(source, keyword.value)
                    edits.append((start, end, f'({source[start:end]} if DSA_HAS_CUDA else "adamw_torch")'))
    return edits


OPTIM_FALLBACK = edit_repair(
    "hw_optim",
    r"\boptim\s*=\s*[\"'][^\"']*(8bit|bnb|paged|4bit)",
    _find_optim,
    "hardware fallback: 8-bit/paged optimisers (bitsandbytes) need CUDA; without it adamw_torch",
)


def _attention_edit(source: str, value: ast.AST) -> Edit | None:
    text = _const(value, str)
    if text and re.search(r"flash|kernels-community|/|xformers|paged", text):
        start, end = span(source, value)
        return (start, end, f"({source[start:end]} if DSA_HAS_CUDA else None)")
    return None


def _find_attention(source: str, tree: ast.Module) -> list[Edit]:
    parents = _parents(tree)
    edits = []
    for node in ast.walk(tree):
        pairs = []
        if _gated(node, parents):
            continue
        if isinstance(node, ast.Call):
            pairs = [(k.arg, k.value) for k in node.keywords]
        elif isinstance(node, ast.Dict):
            pairs = [(_const(k, str), v) for k, v in zip(node.keys, node.values) if k is not None]
        for key, value in pairs:
            if key == "attn_implementation":
                edit = _attention_edit(source, value)
                if edit:
                    edits.append(edit)
    return edits


ATTENTION_FALLBACK = edit_repair(
    "hw_attention",
    r"attn_implementation[\"']?\s*[=:]\s*[\"'][^\"']*(flash|kernels-community|/|xformers|paged)",
    _find_attention,
    "hardware fallback: flash / hub-kernel attention needs CUDA; without it the model's default attention",
)


def _find_cuda_device(source: str, tree: ast.Module) -> list[Edit]:
    parents = _parents(tree)
    edits = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        values = [k.value for k in node.keywords if k.arg in ("device_map", "device")]
        if call_name(node) == "to" and node.args:
            values.append(node.args[0])
        for value in values:
            text = _const(value, str)
            if text and re.fullmatch(r"cuda(:\d+)?", text) and not _gated(value, parents):
                start, end = span(source, value)
                edits.append((start, end, f'({source[start:end]} if DSA_HAS_CUDA else "cpu")'))
    return edits


CUDA_DEVICE_FALLBACK = edit_repair(
    "hw_cuda_device",
    r"[\"']cuda(:\d+)?[\"']",
    _find_cuda_device,
    'hardware fallback: a "cuda" device without CUDA -> "cpu" ("auto" device maps are left as written)',
)


def _cell_parses(source: str) -> bool:
    try:
        ast.parse(source)
    except SyntaxError:
        return False
    return True


def _guard_cell(source: str, condition: str, note: str, otherwise: str) -> str:
    body = textwrap.indent(source.rstrip("\n"), "    ")
    return f"if {condition}:  # {note}\n{body}\nelse:\n{textwrap.indent(otherwise, '    ')}"


_GUARD_MARK = re.compile(r"\Aif DSA_HAS_CUDA:")

GPU_MEMORY_FALLBACK = Repair(
    name="hw_gpu_memory",
    detect=_GPU_MEMORY_CALLS,
    fix=lambda s: _guard_cell(
        s, "DSA_HAS_CUDA", "DSA kit: GPU memory report", 'print("no CUDA device: GPU memory report skipped")'
    ),
    needs=lambda s, _code: _cell_parses(s) and not _GUARD_MARK.match(s),
    reason="hardware fallback: GPU memory report (torch.cuda.get_device_properties / max_memory_reserved) "
    "runs only with CUDA",
)

# What the kit runs instead of a vLLM cell: its own HF generation (adapters/cells/hf_inference.py).
_VLLM_OTHERWISE = (
    'print("no CUDA device: vLLM skipped; the kit\'s HF inference answers a DIPG test question instead")\n'
    "for _dsa_reply in dsa_generate([dsa_prompt_messages(_dsa_row) for _dsa_row in dsa_test_rows[:1]]):\n"
    "    print(_dsa_reply)"
)
_VLLM_SETUP_OTHERWISE = 'print("no CUDA device: vLLM engine not started (vLLM needs CUDA)")'


def _is_vllm_generation(source: str) -> bool:
    return re.search(r"\bSamplingParams\(|\.(generate|chat)\(", source) is not None and "LLM(" not in source


VLLM_FALLBACK = Repair(
    name="hw_vllm",
    detect=r"^\s*(from\s+vllm\b|import\s+vllm\b)|\bSamplingParams\(|\bLLM\(",
    fix=lambda s: _guard_cell(
        s,
        "DSA_HAS_CUDA",
        "DSA kit: vLLM needs CUDA",
        _VLLM_OTHERWISE if _is_vllm_generation(s) else _VLLM_SETUP_OTHERWISE,
    ),
    needs=lambda s, _code: _cell_parses(s) and not _GUARD_MARK.match(s),
    reason="hardware fallback: vLLM needs CUDA; without it the cell is skipped and the kit's HF inference "
    "(dsa_generate, stops on the template's end of turn and EOS) answers instead",
)


# --------------------------------------------------------------------------------- offline safety


def _find_push_calls(source: str, tree: ast.Module) -> list[Edit]:
    """Top-level ``x.push_to_hub(...)`` statements -> ``if dsa_can_push():`` blocks."""
    edits = []
    starts = line_starts(source)
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and call_name(node.value) in (
            "push_to_hub", "push_adapter_to_hub", "upload_folder", "create_repo"
        ):
            start = starts[node.lineno - 1]
            end = span(source, node)[1]
            block = source[start:end]
            guarded = "if dsa_can_push():  # DSA kit: needs a token and the hub\n" + textwrap.indent(block, "    ")
            edits.append((start, end, guarded))
    return edits


PUSH_CALLS_GUARD = edit_repair(
    "hub_push_calls",
    r"\.(push_to_hub|push_adapter_to_hub|upload_folder|create_repo)\(",
    _find_push_calls,
    "hub uploads run only where dsa_can_push() (HF token set and hub reachable); offline they are skipped",
)


def _find_push_flag(source: str, tree: ast.Module) -> list[Edit]:
    edits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "push_to_hub" and _const(keyword.value) is True:
                    start, end = span(source, keyword.value)
                    edits.append((start, end, "dsa_can_push()"))
    return edits


PUSH_FLAG_GUARD = edit_repair(
    "hub_push_flag",
    r"\bpush_to_hub\s*=\s*True",
    _find_push_flag,
    "push_to_hub=True -> dsa_can_push() (the trainer would create a hub repo at start; offline it cannot)",
)


def _find_report_to(source: str, tree: ast.Module) -> list[Edit]:
    edits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and call_name(node) != "dsa_report_to":
            for keyword in node.keywords:
                if keyword.arg != "report_to":
                    continue
                value = keyword.value
                literal = _const(value, str)
                items = [_const(e, str) for e in value.elts] if isinstance(value, (ast.List, ast.Tuple)) else []
                if (literal and literal not in ("none", "")) or (items and all(items) and items != ["none"]):
                    start, end = span(source, value)
                    edits.append((start, end, f"dsa_report_to({source[start:end]})"))
    return edits


REPORT_TO_GUARD = edit_repair(
    "report_to",
    r"\breport_to\s*=\s*[\[\(]?\s*[\"'](?!none[\"'])",
    _find_report_to,
    "report_to -> dsa_report_to(...): trackers that do not import here (trackio, wandb, ...) or need the "
    "hub offline are dropped ('none' when none is left)",
)


def _owner_fstring(node: ast.AST) -> bool:
    """``f"user/{output_dir}..."``: a hub id made of an account and a local name."""
    if not isinstance(node, ast.JoinedStr) or len(node.values) < 2:
        return False
    first, second = node.values[0], node.values[1]
    return (
        isinstance(first, ast.Constant)
        and isinstance(first.value, str)
        and re.fullmatch(r"[A-Za-z0-9][\w.-]*/", first.value) is not None
        and isinstance(second, ast.FormattedValue)
    )


def _find_owner_ids(source: str, tree: ast.Module) -> list[Edit]:
    parents = _parents(tree)
    edits = []
    for node in ast.walk(tree):
        if not _owner_fstring(node):
            continue
        parent = parents.get(id(node))
        while isinstance(parent, (ast.keyword, ast.FormattedValue)):
            parent = parents.get(id(parent))
        if isinstance(parent, ast.Call) and call_name(parent) in ("dsa_local_first", "push_to_hub", "create_repo"):
            continue
        start, end = span(source, node)
        edits.append((start, end, f"dsa_local_first({source[start:end]})"))
    return edits


LOCAL_FIRST_REPAIR = edit_repair(
    "hub_local_first",
    r"\bf[\"'][A-Za-z0-9][\w.-]*/\{",
    _find_owner_ids,
    'hub id built from the author\'s account (f"user/{output_dir}") -> dsa_local_first(...): the folder '
    "this notebook saved is read when it exists, the hub otherwise",
)


# --------------------------------------------------------------------------------- trainer wiring


def _keyword_value_edits(source: str, tree: ast.Module, calls: tuple[str, ...], keyword: str, new: str) -> list[Edit]:
    edits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and call_name(node) in calls:
            for kw in node.keywords:
                if kw.arg == keyword and segment(source, kw.value) != new:
                    start, end = span(source, kw.value)
                    edits.append((start, end, new))
    return edits


def _drop_keyword_edits(source: str, tree: ast.Module, calls: tuple[str, ...], keyword: str) -> list[Edit]:
    """Remove ``keyword=value`` (with its comma, and the whole line when it stands alone)."""
    edits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and call_name(node) in calls:
            for kw in node.keywords:
                if kw.arg != keyword:
                    continue
                start, end = span(source, kw)
                tail = re.match(r"\s*,?[ \t]*(#[^\n]*)?", source[end:])
                end += tail.end() if tail else 0
                line_start = source.rfind("\n", 0, start) + 1
                if not source[line_start:start].strip() and (end >= len(source) or source[end] == "\n"):
                    start, end = line_start, min(end + 1, len(source))
                edits.append((start, end, ""))
    return edits


TRAINERS = ("SFTTrainer", "GRPOTrainer", "Trainer", "DPOTrainer")


def trainer_dataset_repair(dataset_name: str, what: str) -> Repair:
    """``XTrainer(train_dataset=<anything>)`` -> ``train_dataset=<dataset_name>`` (the kit's rows)."""
    return edit_repair(
        f"train_dataset_{dataset_name}",
        r"\btrain_dataset\s*=",
        lambda source, tree: _keyword_value_edits(source, tree, TRAINERS, "train_dataset", dataset_name),
        f"trainer reads the kit's DIPG rows ({dataset_name}: {what})",
    )


TRAINER_EVAL_DATASET_REPAIR = edit_repair(
    "trainer_eval_dataset",
    r"\beval_dataset\s*=",
    lambda source, tree: _drop_keyword_edits(source, tree, TRAINERS, "eval_dataset"),
    "trainer eval_dataset dropped: DIPG test rows are generated and scored in the kit's evaluation cells",
)

TRAINER_REWARDS_REPAIR = edit_repair(
    "trainer_reward_funcs",
    r"\breward_funcs\s*=",
    lambda source, tree: _keyword_value_edits(source, tree, ("GRPOTrainer",), "reward_funcs", "DSA_REWARD_FUNCS"),
    "GRPOTrainer reward_funcs -> DSA_REWARD_FUNCS (strict format, partial format, gym rubric)",
)

# GRPOConfig keywords this TRL (1.16) no longer takes: prompts longer than MAX_PROMPT_LENGTH are dropped
# by the kit's GRPO rows instead.
GRPO_CONFIG_REMOVED = ("max_prompt_length",)

GRPO_CONFIG_KEYWORDS_REPAIR = edit_repair(
    "grpo_config_removed_keywords",
    r"\bmax_prompt_length\s*=",
    lambda source, tree: [
        e for k in GRPO_CONFIG_REMOVED for e in _drop_keyword_edits(source, tree, ("GRPOConfig",), k)
    ],
    "GRPOConfig(max_prompt_length=...) removed: TRL 1.16 has no such field; the kit's GRPO rows drop "
    "prompts over MAX_PROMPT_LENGTH instead",
)

_MODEL_VARIABLES = ("model_id", "model_name", "base_model_id", "model_path", "MODEL_NAME", "BASE_MODEL")


def _find_tuple_model(source: str, tree: ast.Module) -> list[Edit]:
    edits = []
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Tuple)
            and isinstance(node.value, ast.Tuple)
            and len(node.targets[0].elts) == len(node.value.elts)
        ):
            for target, value in zip(node.targets[0].elts, node.value.elts):
                if isinstance(target, ast.Name) and target.id in _MODEL_VARIABLES and _const(value, str):
                    start, end = span(source, value)
                    edits.append((start, end, "MODEL_ID"))
    return edits


def _tuple_model_reason(source: str, _code: str) -> str:
    tree = parse(source)
    names = []
    for node in (tree.body if tree else []):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple):
            names += [v for v in (_const(e, str) for e in node.value.elts) if v and "/" in v]
    model = names[0] if names else "the base model"
    return (f"hard-coded model {model} -> MODEL_ID (parameters cell): the kit trains and renders Gemma-3 "
            "turns, so MODEL_ID must be a Gemma-3 model")


MODEL_TUPLE_REPAIR = Repair(
    name="model_id_tuple",
    detect=r"^\s*\w+(\s*,\s*\w+)+\s*=\s*[\"']",
    fix=lambda s: apply_edits(s, _find_tuple_model(s, parse(s))) if parse(s) else s,
    needs=lambda s, _code: bool(parse(s) and _find_tuple_model(s, parse(s))),
    reason="hard-coded model id -> MODEL_ID (parameters cell)",
    describe=_tuple_model_reason,
)

# Whole-cell guards first: what they put under `if DSA_HAS_CUDA:` needs no value-level fallback.
HARDWARE_FALLBACKS = (
    VLLM_FALLBACK,
    GPU_MEMORY_FALLBACK,
    QUANTIZATION_FALLBACK,
    HALF_DTYPE_FALLBACK,
    TRAINING_FLAGS_FALLBACK,
    TRL_BF16_DEFAULT_FALLBACK,
    TRL_CPU_SETTINGS_FALLBACK,
    OPTIM_FALLBACK,
    ATTENTION_FALLBACK,
    CUDA_DEVICE_FALLBACK,
)
OFFLINE_REPAIRS = (PUSH_FLAG_GUARD, PUSH_CALLS_GUARD, REPORT_TO_GUARD, LOCAL_FIRST_REPAIR)
