"""Repairs for the Tunix GRPO demo family (``grpo_demo.ipynb`` <= v0.1.3, ``grpo_gemma.ipynb`` on main),
by what the code does; the Kaggle-TPU repairs they share live in :mod:`.tunix_repairs`.

* hardware fallbacks: a mesh given as ``MESH = [shape, axis names]`` and unpacked into
  ``jax.make_mesh(*MESH)``, and a device-count check that raises on any count but a TPU's;
* the model: the checkpoint download (``snapshot_download``/``kagglehub.model_download`` of a fixed id) ->
  MODEL_ID through the kit's resolver, keeping the base's variable; a Gemma 2 loader (a Kaggle Flax checkpoint
  converted and restored into ``gemma.Transformer``, in a function or at top level) -> Gemma 3 from MODEL_ID's
  safetensors; a ModelConfig preset picked from MODEL_ID's *name* (raising for any other) -> the folder's
  config for any other name;
* the 0.1.7 API: ``GRPOLearner(rl_engine=...)`` (main) -> ``rl_cluster=``, ``jax.make_mesh(*MESH)`` with Auto
  axes, a rollout without stop tokens -> 106 and 1;
* paths and services: Colab's ``/tmp/content`` / ``/content`` folders -> OUTPUT_DIR, an export folder named
  ``./{MODEL_ID}`` (a local path here) -> OUTPUT_DIR, ``wandb`` optional;
* the GRPO log: OUTPUT_DIR/grpo_log.json after the learner's ``.train()`` (per-step loss and mean reward).

Each fix is idempotent: its output no longer matches its own detection.
"""

from __future__ import annotations

import ast
import re

from .base import Repair
from .source_edits import Edit, apply_edits, call_name, edit_repair, line_starts, span
from .tunix_repairs import _fix_grpo_log, _jax_name, _parse, _train_statement, _trainer_names

# ------------------------------------------------------------ mesh written as MESH = [shape, axes]


def _starred_mesh_names(code: str) -> set[str]:
    return set(re.findall(r"\bmake_mesh\(\s*\*\s*([A-Za-z_]\w*)", code))


def _mesh_list_edits(source: str, tree: ast.Module, code: str) -> list[Edit]:
    names = _starred_mesh_names(code)
    edits = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id in names and isinstance(node.value, (ast.List, ast.Tuple)) \
                and len(node.value.elts) == 2 and "DSA_HAS_TPU" not in ast.get_source_segment(source, node):
            shape, axes = node.value.elts
            start, end = span(source, shape)
            ones = ", ".join(["1"] * (len(axes.elts) - 1)) if isinstance(axes, (ast.Tuple, ast.List)) else "1"
            edits.append((start, end, f"({source[start:end]} if DSA_HAS_TPU else (len({_jax_name(code)}.devices()), {ones}))"))
    return edits


MESH_LIST_REPAIR = edit_repair(
    "tpu_mesh_list",
    r"^\w+\s*=\s*[\[(]",
    _mesh_list_edits,
    "hardware fallback: the TPU mesh shape in MESH = [shape, axes] (jax.make_mesh(*MESH)) -> "
    "(len(jax.devices()), 1) without a TPU",
    sees_notebook=True,
    magics_as_pass=True,
)


def _device_count_statements(source: str) -> list[ast.Assign]:
    """``N = len(jax.devices())`` in a cell that raises for an unsupported count (a TPU-only check)."""
    tree = _parse(source)
    if tree is None or not any(isinstance(n, ast.Raise) for n in ast.walk(tree)):
        return []
    found = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and call_name(node.value) == "len" and node.value.args \
                and call_name(node.value.args[0]) == "devices" and "DSA_HAS_TPU" not in ast.get_source_segment(source, node):
            found.append(node)
    return found


def _fix_device_count(source: str) -> str:
    edits = []
    for node in _device_count_statements(source):
        _, end = span(source, node.value)
        edits.append((end, end, " if DSA_HAS_TPU else 1  # hardware fallback: no TPU, one mesh row per device below"))
    return apply_edits(source, edits)


DEVICE_COUNT_REPAIR = Repair(
    name="tpu_device_count",
    detect=r"len\(\s*\w+\.devices\(\)\s*\)",
    fix=_fix_device_count,
    needs=lambda source, _code: bool(_device_count_statements(source)),
    reason="hardware fallback: the TPU count check (raises for any count but 1 or 8 TPUs) takes its 1-chip "
    "branch without a TPU; the mesh then spans jax.devices()",
)


def _starred_mesh_calls(source: str) -> list[ast.Call]:
    tree = _parse(source)
    if tree is None:
        return []
    return [n for n in ast.walk(tree) if call_name(n) == "make_mesh" and len(n.args) == 1
            and isinstance(n.args[0], ast.Starred) and not any(k.arg == "axis_types" for k in n.keywords)]


def _fix_starred_mesh(source: str) -> str:
    edits = []
    for call in _starred_mesh_calls(source):
        jax_name = ast.get_source_segment(source, call.func.value) if isinstance(call.func, ast.Attribute) else "jax"
        value = ast.get_source_segment(source, call.args[0].value)
        _, end = span(source, call)
        edits.append((end - 1, end - 1, f", axis_types=({jax_name}.sharding.AxisType.Auto,) * len({value}[1])"))
    return apply_edits(source, edits)


STARRED_MESH_AXES_REPAIR = Repair(
    name="mesh_axis_types_starred",
    detect=r"\bmake_mesh\(\s*\*",
    fix=_fix_starred_mesh,
    needs=lambda source, _code: bool(_starred_mesh_calls(source)),
    reason="jax.make_mesh(*MESH) without axis_types: jax >= 0.7 makes Explicit axes, which Tunix's sharding "
    "constraints reject -> Auto axes (the earlier default)",
)

# ----------------------------------------------------------------------- the model: Gemma 2 -> Gemma 3


def _is_preset(node: ast.AST) -> str | None:
    """``<...>.ModelConfig.<preset>()`` -> preset name."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and not node.args and not node.keywords:
        owner = node.func.value
        owner_name = owner.attr if isinstance(owner, ast.Attribute) else owner.id if isinstance(owner, ast.Name) else None
        if owner_name == "ModelConfig":
            return node.func.attr
    return None


def _gemma2_loaders(source: str) -> list[ast.FunctionDef]:
    """Top-level functions that build a non-Gemma-3 Tunix model (a ``gemma2_*`` preset) and return it."""
    tree = _parse(source)
    if tree is None:
        return []
    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            presets = [p for p in map(_is_preset, ast.walk(node)) if p]
            returns = [n for n in ast.walk(node) if isinstance(n, ast.Return) and n.value is not None]
            if presets and not any(p.startswith("gemma3") for p in presets) and returns:
                found.append(node)
    return found


def _assigned_from(function: ast.FunctionDef, predicate) -> str | None:
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and predicate(node.value):
            return node.targets[0].id
    return None


def _gemma3_loader(source: str, function: ast.FunctionDef) -> str:
    lines = source.split("\n")
    indent = " " * (function.body[0].col_offset - function.col_offset)
    mesh = _assigned_from(function, lambda v: call_name(v) == "make_mesh") or "mesh"
    config = _assigned_from(function, lambda v: _is_preset(v) is not None) or "model_config"
    mesh_call = next((n for n in ast.walk(function) if call_name(n) == "make_mesh"), None)
    mesh_args = ", ".join(ast.get_source_segment(source, a) for a in mesh_call.args) if mesh_call else "*MESH"
    ret = next(n for n in ast.walk(function) if isinstance(n, ast.Return) and n.value is not None)
    returned = [e.id for e in (ret.value.elts if isinstance(ret.value, ast.Tuple) else [ret.value])
                if isinstance(e, ast.Name)]
    model = next((name for name in returned if name not in (mesh, config)), "model")
    axes = f"len({mesh_args[1:]}[1])" if mesh_args.startswith("*") else "2"
    header = lines[function.lineno - 1 : function.body[0].lineno - 1]
    if isinstance(function.body[0], ast.Expr) and isinstance(getattr(function.body[0], "value", None), ast.Constant):
        header = lines[function.lineno - 1 : function.body[0].end_lineno]  # keep the docstring
    body = [
        f"{indent}# DSA kit: Gemma 3 from MODEL_ID's safetensors folder (the base restored a Gemma 2 Flax checkpoint",
        f"{indent}# converted from Kaggle into gemma.Transformer); the config follows the folder's config.json.",
        f"{indent}from tunix.models.gemma3 import model as dsa_gemma3_lib",
        f"{indent}from tunix.models.gemma3 import params_safetensors as dsa_gemma3_safetensors",
        "",
        f"{indent}{mesh} = jax.make_mesh({mesh_args}, axis_types=(jax.sharding.AxisType.Auto,) * {axes})",
        f"{indent}{config} = dsa_tunix_model_config(dsa_gemma3_lib.ModelConfig.gemma3_1b_it(), local_model_path)",
        f"{indent}with {mesh}:",
        f"{indent}{indent}{model} = dsa_gemma3_safetensors.create_model_from_safe_tensors(local_model_path, {config}, {mesh})",
        f"{indent}{ast.get_source_segment(source, ret)}",
    ]
    return "\n".join(header + body)


def _fix_gemma2_loaders(source: str) -> str:
    starts = line_starts(source)
    edits = []
    for function in _gemma2_loaders(source):
        start = starts[function.lineno - 1]
        end = starts[function.end_lineno - 1] + len(source.split("\n")[function.end_lineno - 1])
        edits.append((start, end, _gemma3_loader(source, function)))
    return apply_edits(source, edits)


GEMMA2_LOADER_REPAIR = Repair(
    name="gemma2_loader",
    detect=r"\bModelConfig\.\w+\(\s*\)",
    fix=_fix_gemma2_loaders,
    needs=lambda source, _code: bool(_gemma2_loaders(source)),
    reason="Gemma 2 loader (a Kaggle Flax checkpoint restored into gemma.Transformer) -> Gemma 3 from MODEL_ID's "
    "safetensors with the folder's config (google-tunix 0.1.7; any Gemma-3 size)",
)


def _preset_chains(source: str) -> list[tuple[ast.Raise, str, str]]:
    """(raise, target, preset call text) of if/elif chains picking a ModelConfig preset, raising otherwise."""
    tree = _parse(source)
    if tree is None:
        return []
    found = []
    for node in tree.body:
        if not isinstance(node, ast.If):
            continue
        branch, target, preset = node, None, None
        while isinstance(branch, ast.If):
            for statement in branch.body:
                if isinstance(statement, ast.Assign) and len(statement.targets) == 1 \
                        and isinstance(statement.targets[0], ast.Name) and "ModelConfig." in ast.unparse(statement.value):
                    target, preset = statement.targets[0].id, ast.get_source_segment(source, statement.value)
            tail = branch.orelse
            branch = tail[0] if len(tail) == 1 and isinstance(tail[0], ast.If) else None
            if branch is None and target and len(tail) == 1 and isinstance(tail[0], ast.Raise):
                found.append((tail[0], target, preset))
    return found


def _fix_preset_chain(source: str) -> str:
    edits = []
    for raise_node, target, preset in _preset_chains(source):
        start, end = span(source, raise_node)
        edits.append((start, end, f"{target} = {preset}  # DSA kit: any other Gemma-3 folder (config.json decides)"))
    return apply_edits(source, edits)


PRESET_CHAIN_REPAIR = Repair(
    name="model_config_by_name",
    detect=r"\bModelConfig\.\w+\(",
    fix=_fix_preset_chain,
    needs=lambda source, _code: bool(_preset_chains(source)),
    reason="ModelConfig preset picked from MODEL_ID's name (raising for any other name) -> the last preset, "
    "resized to the folder's config.json, for any other Gemma-3 folder (e.g. a local one)",
)

def _download_assignments(source: str) -> list[ast.Assign]:
    tree = _parse(source)
    if tree is None:
        return []
    return [n for n in ast.walk(tree) if isinstance(n, ast.Assign) and len(n.targets) == 1
            and call_name(n.value) in ("model_download", "snapshot_download")
            and (call_name(n.value) == "snapshot_download" or "kagglehub" in ast.unparse(n.value.func))]


DOWNLOAD_REPAIR = Repair(
    name="checkpoint_download",
    detect=r"\b(kagglehub\.model_download|snapshot_download)\(",
    fix=lambda source: apply_edits(source, [(*span(source, n.value), "dsa_resolve_model(MODEL_ID)")
                                       for n in _download_assignments(source)]),
    needs=lambda source, _code: bool(_download_assignments(source)),
    reason="download of a fixed checkpoint (Hugging Face / Kaggle) -> dsa_resolve_model(MODEL_ID): a local "
    "Gemma-3 folder, hub id or Kaggle handle (model_path cell)",
)


def _gemma2_statement_edits(source: str, tree: ast.Module, code: str) -> list[Edit]:
    """Top-level Gemma 2 statements: params conversion, a gemma2 config preset, Transformer.from_params."""
    config = mesh = None
    for name in re.findall(r"^(\w+)\s*=\s*[\w.]*make_mesh\(", code, re.M):
        mesh = name
    edits, header = [], False
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        target, call = node.targets[0].id, call_name(node.value)
        preset = _is_preset(node.value) or (call if isinstance(node.value, ast.Call) and
                                            "TransformerConfig." in ast.unparse(node.value.func) else None)
        start, end = span(source, node)
        if call == "load_and_format_params":
            edits.append((start, end, f"# DSA kit: no Gemma 2 params to convert (base: {target} = ...load_and_format_params(...))"))
        elif preset and not preset.startswith("gemma3"):
            config = target
            header = True
            edits.append((start, end, f"{target} = dsa_tunix_model_config(dsa_gemma3_lib.ModelConfig.gemma3_1b_it(), "
                                      "local_model_path)  # DSA kit: Gemma 3 (base: a Gemma 2 preset)"))
        elif call == "from_params" and "Transformer" in ast.unparse(node.value.func):
            header = True
            model_config = config or "model_config"
            args = f"local_model_path, {model_config}" + (f", {mesh}" if mesh else "")
            edits.append((start, end, f"{target} = dsa_gemma3_safetensors.create_model_from_safe_tensors({args})  "
                                      "# DSA kit: Gemma 3 safetensors (base: Gemma 2 Transformer.from_params)"))
    if header and edits:
        edits.append((0, 0, "from tunix.models.gemma3 import model as dsa_gemma3_lib\n"
                            "from tunix.models.gemma3 import params_safetensors as dsa_gemma3_safetensors\n"))
    return edits


GEMMA2_STATEMENTS_REPAIR = edit_repair(
    "gemma2_statements",
    r"\b(load_and_format_params|from_params|TransformerConfig\.gemma2|ModelConfig\.gemma2)",
    _gemma2_statement_edits,
    "Gemma 2 model built from a converted Kaggle Flax checkpoint -> Gemma 3 from MODEL_ID's safetensors "
    "with the folder's config (google-tunix 0.1.7; any Gemma-3 size)",
    sees_notebook=True,
    magics_as_pass=True,
)


def saves_checkpoint(source: str) -> bool:
    """The cell converts and stores a checkpoint (a ``.save(`` call): its only product is that file."""
    return re.search(r"\.save\(", source) is not None


# ----------------------------------------------------------------------------- google-tunix 0.1.7 API

RL_ENGINE_KEYWORD_REPAIR = Repair(
    name="rl_engine_keyword",
    detect=r"[(,]\s*rl_engine\s*=(?!=)",
    fix=lambda s: re.sub(r"([(,]\s*)rl_engine\s*=(?!=)", r"\1rl_cluster=", s),
    reason="GRPOLearner(rl_engine=...) (Tunix main) -> rl_cluster= (google-tunix 0.1.7)",
)


def _rollouts_without_stop(source: str) -> list[ast.Call]:
    tree = _parse(source)
    if tree is None:
        return []
    return [n for n in ast.walk(tree) if call_name(n) == "RolloutConfig"
            and not any(k.arg == "eos_tokens" for k in n.keywords)]


def _fix_rollout_stop(source: str) -> str:
    edits = []
    for call in _rollouts_without_stop(source):
        _, end = span(source, call)
        inner = source[: end - 1].rstrip()
        comma = "" if inner.endswith((",", "(")) else ","
        edits.append((len(inner), end - 1, f"{comma}\n        eos_tokens=list(STOP_TOKEN_IDS),  # DSA kit: stop on 106 and 1\n    "))
    return apply_edits(source, edits)


ROLLOUT_STOP_REPAIR = Repair(
    name="rollout_stop_tokens",
    detect=r"\bRolloutConfig\(",
    fix=_fix_rollout_stop,
    needs=lambda source, _code: bool(_rollouts_without_stop(source)),
    reason="GRPO rollout without stop tokens (stops on <eos> only; Gemma ends its turn with 106) -> "
    "eos_tokens=STOP_TOKEN_IDS (106, 1)",
)

# ------------------------------------------------------------------------------ paths and services

_COLAB_DIR = r"^/(?:tmp/)?content(?:/|$)"


def _colab_path_edits(source: str, tree: ast.Module) -> list[Edit]:
    inside_fstring = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    edits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in inside_fstring \
                and re.match(_COLAB_DIR, node.value):
            rest = re.sub(_COLAB_DIR, "", node.value)
            start, end = span(source, node)
            # absolute: orbax checkpoint managers refuse relative paths
            edits.append((start, end, f"os.path.abspath(os.path.join(OUTPUT_DIR, {rest!r}))" if rest
                          else "os.path.abspath(OUTPUT_DIR)"))
    return edits


COLAB_PATHS_REPAIR = edit_repair(
    "colab_content_paths",
    r"[\"']/(tmp/)?content/",
    _colab_path_edits,
    "Colab's /tmp/content and /content folders (checkpoints, logs; shared by every run of this machine, and "
    "a stale checkpoint there would be resumed) -> OUTPUT_DIR",
    magics_as_pass=True,
)

_MODEL_ID_DIR = r"f([\"'])\./\{MODEL_ID\}([^\"'{}\n]*)\1"

MODEL_ID_DIR_REPAIR = Repair(
    name="model_id_output_dir",
    detect=_MODEL_ID_DIR,
    fix=lambda s: re.sub(_MODEL_ID_DIR,
                         lambda m: f"os.path.join(OUTPUT_DIR, os.path.basename(os.path.normpath(MODEL_ID)) + {m.group(2)!r})",
                         s),
    reason="export folder ./{MODEL_ID} (MODEL_ID may be a local path) -> OUTPUT_DIR/<model folder name>",
)


def _wandb_edits(source: str) -> str:
    source = re.sub(
        r"^([ \t]*)import wandb[ \t]*$",
        lambda m: (f"{m.group(1)}try:\n{m.group(1)}    import wandb\n{m.group(1)}except ImportError:  "
                   f"# DSA kit: wandb is optional (Tunix keeps its own metrics): every wandb.X(...) does nothing\n"
                   f"{m.group(1)}    wandb = type(\"NoWandb\", (), {{\"__getattr__\": lambda self, name: lambda *a, **k: None}})()"),
        source, flags=re.M)
    return source


WANDB_OPTIONAL_REPAIR = Repair(
    name="wandb_optional",
    detect=r"^[ \t]*import wandb[ \t]*$",
    fix=_wandb_edits,
    needs=lambda source, _code: "NoWandb" not in source and _wandb_edits(source) != source,
    reason="wandb made optional (its install is skipped in a prepared environment; runs use Tunix's metrics and "
    "OUTPUT_DIR/grpo_log.json)",
)

# ------------------------------------------------------------ GRPO-only notebook: grpo_log.json


GRPO_TRAIN_LOG_REPAIR = Repair(
    name="grpo_train_log",
    detect=r"\.train\(",
    fix=_fix_grpo_log,
    fix_sees_notebook=True,
    needs=lambda source, code: "DSA_GRPO_LOG" not in source
    and _train_statement(source, _trainer_names(code, "GRPOLearner")) is not None,
    reason="GRPO steps done, per-step policy loss and mean DSA reward, each DSA reward per scored batch -> "
    "OUTPUT_DIR/grpo_log.json",
)

# Order: the Gemma 2 loader is rewritten before the shared preset repair would wrap its gemma2 preset.
TUNIX_GRPO_DEMO_REPAIRS = (
    DOWNLOAD_REPAIR,
    GEMMA2_LOADER_REPAIR,
    GEMMA2_STATEMENTS_REPAIR,
    PRESET_CHAIN_REPAIR,
    MESH_LIST_REPAIR,
    DEVICE_COUNT_REPAIR,
    STARRED_MESH_AXES_REPAIR,
    RL_ENGINE_KEYWORD_REPAIR,
    ROLLOUT_STOP_REPAIR,
    COLAB_PATHS_REPAIR,
    MODEL_ID_DIR_REPAIR,
    WANDB_OPTIONAL_REPAIR,
)
