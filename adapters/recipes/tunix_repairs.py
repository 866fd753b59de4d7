"""Repairs for Tunix/JAX notebooks written for a Kaggle TPU (FIELD_NOTES §4a, §5), by what the code does.

Hardware fallbacks (reason "hardware fallback: ..."), active only without the hardware: the TPU mesh shape
becomes one derived from ``jax.devices()``, TPU/GPU runtime flags are set only on a TPU/GPU, device memory
statistics (None on CPU) are skipped with a note. Version and correctness repairs: ``jax.make_mesh`` with
Auto axes (jax >= 0.7 makes Explicit ones), the Tunix model config and tokenizer following MODEL_ID's
folder, the kagglehub download through the kit's resolver, ``/kaggle/working`` paths outside Kaggle, the
GRPO half's own settings (steps, generations, generation length) following the parameters cell, the
math tags and prompt of a kept settings cell deferring to the DIPG ones, and the SFT / GRPO training
cells writing OUTPUT_DIR/train_log.json and OUTPUT_DIR/grpo_log.json.

Each fix is idempotent: its output no longer matches its own detection.
"""

from __future__ import annotations

import ast
import re

from .base import Repair
from .source_edits import Edit, apply_edits, call_name, edit_repair, parse, span

# ----------------------------------------------------------------------------------------- helpers


def _parse(source: str) -> ast.Module | None:
    """The cell's AST with IPython shell/magic lines read as ``pass`` (line numbers unchanged)."""
    return parse(source, magics_as_pass=True)


def _jax_name(code: str) -> str:
    """How the notebook's code can name jax: ``jax`` where it imports it, else an inline import."""
    return "jax" if re.search(r"^\s*import jax\s*$", code, re.M) else '__import__("jax")'


def _top_statement(tree: ast.Module, node: ast.AST) -> ast.stmt | None:
    for statement in tree.body:
        if statement.lineno <= node.lineno and node.end_lineno <= statement.end_lineno:
            return statement
    return None


# ------------------------------------------------------------------ jax.make_mesh: Auto axis types


def _mesh_calls(tree: ast.Module) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if call_name(n) == "make_mesh" and len(n.args) >= 2
            and not any(k.arg == "axis_types" for k in n.keywords)]


def _fix_mesh_axes(source: str) -> str:
    tree = _parse(source)
    if tree is None:
        return source
    edits = []
    for call in _mesh_calls(tree):
        jax_name = ast.get_source_segment(source, call.func.value) if isinstance(call.func, ast.Attribute) else "jax"
        names = ast.get_source_segment(source, call.args[1])
        _, end = span(source, call)
        edits.append((end - 1, end - 1, f", axis_types=({jax_name}.sharding.AxisType.Auto,) * len({names})"))
    return apply_edits(source, edits)


MESH_AXES_REPAIR = Repair(
    name="mesh_axis_types",
    detect=r"\bmake_mesh\(",
    fix=_fix_mesh_axes,
    needs=lambda source, _code: (tree := _parse(source)) is not None and bool(_mesh_calls(tree)),
    reason="jax.make_mesh without axis_types: jax >= 0.7 makes Explicit axes, which Tunix's sharding "
    "constraints reject -> Auto axes (the earlier default)",
)


# ----------------------------------------------------------------- TPU mesh shape -> jax.devices()


def _mesh_shape_names(code: str) -> set[str]:
    """Names passed as the shape (first argument) of jax.make_mesh anywhere in the notebook."""
    return set(re.findall(r"\bmake_mesh\(\s*([A-Za-z_]\w*)\s*,", code))


def _literal_shape(node: ast.AST) -> bool:
    return isinstance(node, ast.Tuple) and len(node.elts) >= 2 and all(
        isinstance(e, ast.Constant) and isinstance(e.value, int) for e in node.elts)


def _shape_edits(source: str, tree: ast.Module, code: str) -> list[Edit]:
    names = _mesh_shape_names(code)
    jax_name = _jax_name(code)
    edits = []
    for node in ast.walk(tree):
        target = None
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id in names and _literal_shape(node.value):
            target = node.value
        elif call_name(node) == "make_mesh" and node.args and _literal_shape(node.args[0]):
            target = node.args[0]
        if target is not None:
            start, end = span(source, target)
            text = source[start:end]
            ones = ", ".join(["1"] * (len(target.elts) - 1))
            edits.append((start, end, f"({text} if DSA_HAS_TPU else (len({jax_name}.devices()), {ones}))"))
    return edits


MESH_SHAPE_REPAIR = edit_repair(
    "tpu_mesh_shape",
    r"\(\s*\d+\s*,\s*\d+\s*\)",
    _shape_edits,
    "hardware fallback: the TPU mesh shape (written for a TPU v5e-8) -> (len(jax.devices()), 1) "
    "without a TPU",
    sees_notebook=True,
    magics_as_pass=True,
)


# ------------------------------------------------- (devices, 1) -> a mesh derived from devices and heads

_ONE_AXIS_SHAPE = r"\(\s*len\(\s*(\w+)\.devices\(\)\s*\)\s*,\s*1\s*\)"


def _derive_mesh(source: str) -> str:
    return re.sub(r"(MESH_SHAPE\s*=\s*)" + _ONE_AXIS_SHAPE,
                  r"\1dsa_mesh_shape(len(\2.devices()), model_config.num_heads, model_config.num_kv_heads)", source)


DERIVED_MESH_REPAIR = Repair(
    "derived_mesh_shape",
    r"MESH_SHAPE\s*=\s*" + _ONE_AXIS_SHAPE,
    _derive_mesh,
    "mesh (devices, 1) -> dsa_mesh_shape(devices, heads, KV heads): (fsdp, tp) from the devices present "
    "(kit cell tunix_mesh)",
    needs=lambda source, _code: re.search(r"\bmodel_config\s*=", source) is not None,
)


# ---------------------------------------------------------------- TPU/GPU runtime flags -> guarded

_TPU_KEYS = ("LIBTPU_INIT_ARGS", "TPU_", "JAX_PLATFORMS")
_ACCELERATOR_KEYS = ("XLA_FLAGS",)


def _environ_key(statement: ast.stmt) -> str | None:
    """KEY of a top-level ``os.environ[KEY] = ...`` or ``os.environ.setdefault(KEY, ...)``."""
    node = None
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target = statement.targets[0]
        if isinstance(target, ast.Subscript) and "environ" in ast.dump(target.value):
            node = target.slice
    elif isinstance(statement, ast.Expr) and call_name(statement.value) == "setdefault" \
            and "environ" in ast.dump(statement.value.func) and statement.value.args:
        node = statement.value.args[0]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _flag_guard(key: str, source: str, statement: ast.stmt) -> str | None:
    text = ast.get_source_segment(source, statement) or ""
    if key.startswith(_TPU_KEYS) and (key != "JAX_PLATFORMS" or "tpu" in text.lower()):
        return "DSA_HAS_TPU"
    if key in _ACCELERATOR_KEYS and re.search(r"xla_(gpu|tpu)", text):
        return "DSA_HAS_TPU or DSA_HAS_CUDA"
    return None


def _flag_statements(source: str) -> list[tuple[ast.stmt, str]]:
    tree = _parse(source)
    if tree is None:
        return []
    found = []
    for statement in tree.body:
        key = _environ_key(statement)
        guard = _flag_guard(key, source, statement) if key else None
        if guard:
            found.append((statement, guard))
    return found


def _fix_flags(source: str) -> str:
    lines = source.split("\n")
    for statement, guard in sorted(_flag_statements(source), key=lambda item: -item[0].lineno):
        first, last = statement.lineno - 1, statement.end_lineno - 1
        body = ["    " + line if line.strip() else line for line in lines[first : last + 1]]
        lines[first : last + 1] = [f"if {guard}:  # TPU/GPU runtime flags; nothing to set on CPU"] + body
    return "\n".join(lines)


TPU_FLAGS_REPAIR = Repair(
    name="tpu_flags",
    detect=r"environ\b",
    fix=_fix_flags,
    needs=lambda source, _code: bool(_flag_statements(source)),
    reason="hardware fallback: TPU/GPU runtime flags (LIBTPU_INIT_ARGS, XLA_FLAGS for TPU/GPU, JAX_PLATFORMS=tpu) "
    "set only on a TPU/GPU",
)


# ------------------------------------------------------------- device.memory_stats(): None on CPU


def _memory_stats_assignments(source: str) -> list[ast.Assign]:
    tree = _parse(source)
    if tree is None:
        return []
    found = []
    for loop in ast.walk(tree):
        if isinstance(loop, ast.For):
            for index, statement in enumerate(loop.body):
                if isinstance(statement, ast.Assign) and call_name(statement.value) == "memory_stats" \
                        and len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name):
                    following = loop.body[index + 1] if index + 1 < len(loop.body) else None
                    if not (isinstance(following, ast.If) and "DSA" in (ast.get_source_segment(source, following) or "")):
                        found.append(statement)
    return found


def _fix_memory_stats(source: str) -> str:
    lines = source.split("\n")
    for statement in sorted(_memory_stats_assignments(source), key=lambda s: -s.lineno):
        indent = " " * statement.col_offset
        name = statement.targets[0].id
        device = ast.get_source_segment(source, statement.value.func.value) if isinstance(
            statement.value.func, ast.Attribute) else "device"
        lines[statement.end_lineno : statement.end_lineno] = [
            f"{indent}if not {name}:  # DSA hardware fallback: CPU devices keep no memory statistics",
            f'{indent}    print(f"no memory statistics on {{{device}}} (no TPU/GPU)")',
            f"{indent}    continue",
        ]
    return "\n".join(lines)


MEMORY_STATS_REPAIR = Repair(
    name="memory_stats",
    detect=r"\.memory_stats\(\)",
    fix=_fix_memory_stats,
    needs=lambda source, _code: bool(_memory_stats_assignments(source)),
    reason="hardware fallback: device.memory_stats() is None on CPU -> the HBM report prints a note instead",
)


# -------------------------------------------------------------- /kaggle/working outside Kaggle


def _kaggle_path_edits(source: str, tree: ast.Module) -> list[Edit]:
    inside_fstring = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    inside_fstring |= {id(n.body) for n in ast.walk(tree)  # already repaired: ("/kaggle/working" if IN_KAGGLE ...)
                       if isinstance(n, ast.IfExp) and isinstance(n.test, ast.Name) and n.test.id == "IN_KAGGLE"}
    edits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in inside_fstring \
                and re.match(r"^/kaggle/working(/|$)", node.value):
            rest = node.value[len("/kaggle/working"):]
            start, end = span(source, node)
            base = '("/kaggle/working" if IN_KAGGLE else os.getcwd())'  # os: imported by the headless cell
            edits.append((start, end, f"{base} + {rest!r}" if rest else base))
    return edits


KAGGLE_WORKING_REPAIR = edit_repair(
    "kaggle_working",
    r"[\"']/kaggle/working",
    _kaggle_path_edits,
    "/kaggle/working paths -> the working directory outside Kaggle (creating /kaggle/working elsewhere "
    "would make every later run believe it is on Kaggle)",
    magics_as_pass=True,
)


# ------------------------------------------------ kagglehub download -> the kit's model resolver


def _fix_download(source: str) -> str:
    source = re.sub(r"\bkagglehub\.model_download\(", "dsa_resolve_model(", source)
    if not re.search(r"\bkagglehub\.", source):
        source = re.sub(r"^import kagglehub[ \t]*\n", "", source, flags=re.M)
    return source


KAGGLEHUB_DOWNLOAD_REPAIR = Repair(
    name="kagglehub_download",
    detect=r"\bkagglehub\.model_download\(",
    fix=_fix_download,
    reason="kagglehub.model_download -> dsa_resolve_model (model_path cell): MODEL_ID may be a local folder, a "
    "Kaggle handle or a hub id",
)


# ----------------------------------------------- Tunix model config and tokenizer follow MODEL_ID


def _preset_calls(source: str) -> list[ast.Call]:
    """``<...>.ModelConfig.<preset>()`` calls not already wrapped by dsa_tunix_model_config."""
    tree = _parse(source)
    if tree is None:
        return []
    wrapped = {id(a) for n in ast.walk(tree) if call_name(n) == "dsa_tunix_model_config" for a in n.args}
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            and isinstance(n.func.value, (ast.Attribute, ast.Name))
            and (n.func.value.attr if isinstance(n.func.value, ast.Attribute) else n.func.value.id) == "ModelConfig"
            and not n.args and not n.keywords and id(n) not in wrapped]


def _fix_preset(source: str) -> str:
    edits = []
    for call in _preset_calls(source):
        start, end = span(source, call)
        edits.append((start, end, f"dsa_tunix_model_config({source[start:end]}, local_model_path)"))
    return apply_edits(source, edits)


MODEL_CONFIG_REPAIR = Repair(
    name="tunix_model_config",
    detect=r"\bModelConfig\.\w+\(\s*\)",
    fix=_fix_preset,
    needs=lambda source, _code: bool(_preset_calls(source)),
    reason="fixed ModelConfig preset -> dsa_tunix_model_config(preset, local_model_path): the preset when "
    "MODEL_ID's config.json is that model, else the folder's own dimensions (any Gemma-3 size); float32 "
    "without bf16 hardware",
)


def _tokenizer_calls(source: str) -> list[ast.Call]:
    tree = _parse(source)
    if tree is None:
        return []
    return [n for n in ast.walk(tree) if call_name(n) == "Tokenizer"
            and any(k.arg == "tokenizer_path" for k in n.keywords)
            and not any(k.arg == "tokenizer_type" for k in n.keywords)]


TOKENIZER_REPAIR = Repair(
    name="tunix_tokenizer",
    detect=r"\bTokenizer\(",
    fix=lambda source: apply_edits(source, [(*span(source, c), "dsa_tunix_tokenizer(local_model_path)")
                                       for c in _tokenizer_calls(source)]),
    needs=lambda source, _code: bool(_tokenizer_calls(source)),
    reason="Tunix SentencePiece Tokenizer (appends <eos> to every encoded prompt, so sampler and GRPO prompts "
    "ended in <eos>; needs tokenizer.model and sentencepiece < 0.2.2) -> Tunix's Hugging Face tokenizer on "
    "the same folder, <bos> only",
)


# --------------------------------------------------- the kit's cells call the policy model gemma3


def _policy_name(code: str) -> str | None:
    match = re.search(r"^[ \t]*(\w+)\s*=\s*[\w.]*create_model_from_safe_tensors\(", code, re.M)
    return match.group(1) if match else None


def _alias_statement(source: str, code: str) -> ast.stmt | None:
    name = _policy_name(code)
    if name in (None, "gemma3") or re.search(r"^gemma3\s*=", code, re.M):
        return None
    tree = _parse(source)
    if tree is None:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id == name and call_name(node.value) == "create_model_from_safe_tensors":
            return _top_statement(tree, node)
    return None


def _fix_alias(source: str, code: str) -> str:
    statement = _alias_statement(source, code)
    lines = source.split("\n")
    lines.insert(statement.end_lineno, f"gemma3 = {_policy_name(code)}  # the kit's Tunix cells call the policy gemma3")
    return "\n".join(lines)


POLICY_ALIAS_REPAIR = Repair(
    name="policy_alias",
    detect=r"\bcreate_model_from_safe_tensors\(",
    fix=_fix_alias,
    fix_sees_notebook=True,
    needs=lambda source, code: _alias_statement(source, code) is not None,
    reason="the policy model is also named gemma3, the name the kit's inference cell reads",
)


# -------------------------------------------- the GRPO half's own settings -> the parameters cell

_GRPO_SETTINGS = r"^(NUM_GENERATIONS|TOTAL_GENERATION_STEPS|NUM_ITERATIONS)\s*="


def _grpo_settings_cell(source: str) -> bool:
    return re.search(_GRPO_SETTINGS, source, re.M) is not None


def _fix_grpo_settings(source: str) -> str:
    source = re.sub(r"^MAX_STEPS\s*=\s*(\d[\d_]*)(.*)$",
                    r"MAX_STEPS: int = GRPO_MAX_STEPS  # the GRPO stage's steps (parameters cell); base notebook had \1",
                    source, flags=re.M)
    source = re.sub(r"^NUM_GENERATIONS\s*=\s*(\d+)(.*)$",
                    r"# NUM_GENERATIONS is set in the parameters cell (base notebook had NUM_GENERATIONS = \1)",
                    source, flags=re.M)
    source = re.sub(r"^TOTAL_GENERATION_STEPS\s*=\s*(\d+)(.*)$",
                    r"TOTAL_GENERATION_STEPS = MAX_NEW_TOKENS  # parameters cell (base notebook had \1)",
                    source, flags=re.M)
    return source


GRPO_SETTINGS_REPAIR = Repair(
    name="grpo_settings",
    detect=r"^(MAX_STEPS|NUM_GENERATIONS|TOTAL_GENERATION_STEPS)\s*=\s*\d",
    fix=_fix_grpo_settings,
    needs=lambda source, _code: _grpo_settings_cell(source),
    reason="the GRPO half's settings follow the parameters cell",
    describe=lambda source, _code: "the GRPO half's settings follow the parameters cell: " + ", ".join(
        what for name, what in (("MAX_STEPS", "its MAX_STEPS -> GRPO_MAX_STEPS"),
                                ("NUM_GENERATIONS", "NUM_GENERATIONS (papermill -p)"),
                                ("TOTAL_GENERATION_STEPS", "TOTAL_GENERATION_STEPS -> MAX_NEW_TOKENS"))
        if re.search(rf"^{name}\s*=\s*\d", source, re.M)),
)

# A micro-batch size the base defines; the kit's SFT/GRPO data cells batch by BATCH_SIZE.
BATCH_ALIAS_REPAIR = Repair(
    name="batch_size_alias",
    detect=r"^(\w*MICRO_BATCH_SIZE)\s*=\s*\d+.*$",
    fix=lambda source: re.sub(r"^(\w*MICRO_BATCH_SIZE)(\s*=\s*\d+.*)$",
                              r"\1\2\nBATCH_SIZE = \1  # the kit's SFT/GRPO data cells batch by BATCH_SIZE",
                              source, count=1, flags=re.M),
    needs=lambda source, _code: re.search(r"^BATCH_SIZE\s*=", source, re.M) is None,
    reason="BATCH_SIZE (read by the kit's data cells) follows the notebook's micro-batch size",
)


# ------------------------------------ math tags and prompt of a kept settings cell -> DIPG ones

_TAG_VALUES = {
    r"<(reasoning|start_working_out|think)>": "THINK_OPEN",
    r"</(reasoning|end_working_out|think)>": "THINK_CLOSE",
    r"<(answer|SOLUTION|solution)>": "ANSWER_OPEN",
    r"</(answer|SOLUTION|solution)>": "ANSWER_CLOSE",
}
_PROMPT_NAMES = ("SYSTEM_PROMPT", "system_prompt", "TEMPLATE", "PROMPT_TEMPLATE")


def _tag_edits(source: str, tree: ast.Module) -> list[Edit]:
    edits = []
    for statement in tree.body:
        if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)):
            continue
        name, value = statement.targets[0].id, statement.value
        while isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):  # f"""...""".strip()
            value = value.func.value
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            for pattern, dipg in _TAG_VALUES.items():
                if re.fullmatch(pattern, value.value):
                    edits.append((*span(source, value), f"{dipg}  # DIPG tag (base notebook: {value.value!r})"))
        if name in _PROMPT_NAMES and isinstance(value, (ast.Constant, ast.JoinedStr)):
            start, end = span(source, statement)
            what = "system prompt" if "system" in name.lower() else "prompt template"
            edits.append((start, end, f"# {name}: the DIPG {what} comes from the kit's tags and prompt cells "
                          f"(base notebook: a math-tutor {what})"))
    return edits


DIPG_TAGS_REPAIR = edit_repair(
    "dipg_tags_kept_cell",
    r"[\"']</?(reasoning|answer|start_working_out|end_working_out|SOLUTION)>[\"']|^(SYSTEM_PROMPT|TEMPLATE)\s*=",
    _tag_edits,
    "math-tutor tags and prompt in a kept settings cell -> the DIPG think/answer tags; SYSTEM_PROMPT and "
    "TEMPLATE defer to the kit's DIPG prompt",
    magics_as_pass=True,
)


# ------------------------------------------------ SFT and GRPO training cells write their logs


def _trainer_names(code: str, constructor: str) -> set[str]:
    return set(re.findall(rf"^[ \t]*(\w+)\s*=\s*(?:[\w.]*\.)?{constructor}\(", code, re.M))


def _train_statement(source: str, names: set[str]) -> tuple[ast.stmt, str] | None:
    tree = _parse(source)
    if tree is None:
        return None
    for node in ast.walk(tree):
        if call_name(node) == "train" and isinstance(node.func.value, ast.Name) and node.func.value.id in names:
            statement = _top_statement(tree, node)
            if statement is not None:
                return statement, node.func.value.id
    return None


def _fix_sft_log(source: str, code: str) -> str:
    statement, name = _train_statement(source, _trainer_names(code, "PeftTrainer"))
    lines = source.split("\n")
    lines.insert(statement.end_lineno,
                 'DSA_TRAIN_LOG = dsa_tunix_train_log(DSA_SFT_HOOKS, _dsa_examples, Path(OUTPUT_DIR) / "train_log.json")')
    lines.insert(statement.lineno - 1, f"{name}.with_training_hooks(DSA_SFT_HOOKS)  # each step's loss -> train_log.json")
    return "\n".join(lines)


SFT_LOG_REPAIR = Repair(
    name="sft_log",
    detect=r"\.train\(",
    fix=_fix_sft_log,
    fix_sees_notebook=True,
    needs=lambda source, code: "DSA_SFT_HOOKS" not in source
    and _train_statement(source, _trainer_names(code, "PeftTrainer")) is not None,
    reason="SFT on the masked DIPG batches with per-step losses logged to OUTPUT_DIR/train_log.json",
)


def _fix_grpo_log(source: str, code: str) -> str:
    statement, name = _train_statement(source, _trainer_names(code, "GRPOLearner"))
    lines = source.split("\n")
    lines.insert(statement.end_lineno, f'DSA_GRPO_LOG = dsa_tunix_grpo_train_log({name}, Path(OUTPUT_DIR) / "grpo_log.json")')
    return "\n".join(lines)


GRPO_LOG_REPAIR = Repair(
    name="grpo_log",
    detect=r"\.train\(",
    fix=_fix_grpo_log,
    fix_sees_notebook=True,
    needs=lambda source, code: "DSA_GRPO_LOG" not in source
    and _train_statement(source, _trainer_names(code, "GRPOLearner")) is not None,
    reason="GRPO steps done and the DSA rewards of each scored batch -> OUTPUT_DIR/grpo_log.json",
)


# Order matters where two touch one cell: the preset repair runs after gemma3_1b_it (recipe order).
TUNIX_REPAIRS = (
    MESH_AXES_REPAIR,
    MESH_SHAPE_REPAIR,
    DERIVED_MESH_REPAIR,
    TPU_FLAGS_REPAIR,
    MEMORY_STATS_REPAIR,
    KAGGLE_WORKING_REPAIR,
    KAGGLEHUB_DOWNLOAD_REPAIR,
    MODEL_CONFIG_REPAIR,
    TOKENIZER_REPAIR,
    POLICY_ALIAS_REPAIR,
    GRPO_SETTINGS_REPAIR,
    BATCH_ALIAS_REPAIR,
    DIPG_TAGS_REPAIR,
    SFT_LOG_REPAIR,
    GRPO_LOG_REPAIR,
)


# ---------------------------------------------------------------- rule predicates (by what a cell does)

_MATH_MODULES = {"sympy", "re", "math", "fractions", "decimal"}


def only_math_helpers(source: str) -> bool:
    """The cell only imports math modules and defines functions (a helper cell, not a settings cell)."""
    tree = _parse(source)
    if tree is None:
        return False
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.Expr)):
            continue
        if isinstance(statement, ast.Import) and all(a.name.split(".")[0] in _MATH_MODULES for a in statement.names):
            continue
        if isinstance(statement, ast.ImportFrom) and (statement.module or "").split(".")[0] in _MATH_MODULES:
            continue
        return False
    return True


def display_only(source: str) -> bool:
    """Every top-level statement is an expression (print/display), nothing is defined."""
    tree = _parse(source)
    return tree is not None and bool(tree.body) and all(isinstance(s, ast.Expr) for s in tree.body)
