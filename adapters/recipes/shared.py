"""Rules and repairs more than one family uses (patterns over cell content, never positions)."""

from __future__ import annotations

import re

from .base import Repair, Rule


TUNIX_PIN_REPAIR = Repair(
    name="tunix_pin",
    detect=r"google-tunix(\[[^\]]*\])?==0\.1\.[0-6]\b",
    fix=lambda s: re.sub(r"(google-tunix(?:\[[^\]]*\])?)==0\.1\.[0-6]\b", r"\1==0.1.7", s),
    reason="google-tunix pinned before 0.1.7 (gemma3_1b(), grpo_config= era) -> 0.1.7, the API the other repairs target",
)

EOS_REPAIR = Repair(
    name="eos_106",
    detect=r"\[\s*tokenizer\.eos_id\(\)\s*\]",
    fix=lambda s: re.sub(r"\[\s*tokenizer\.eos_id\(\)\s*\]", "list(STOP_TOKEN_IDS)", s),
    reason="stop tokens [eos] lacked <end_of_turn> (106): now STOP_TOKEN_IDS (106, 1)",
)

RL_ENGINE_REPAIR = Repair(
    name="rl_engine",
    detect=r"\bRLEngine\b",
    fix=lambda s: re.sub(r"\bRLEngine\b", "RLCluster", s),
    reason="RLEngine (Tunix main) -> RLCluster (google-tunix 0.1.7 has only RLCluster)",
)

GEMMA3_1B_REPAIR = Repair(
    name="gemma3_1b_it",
    detect=r"\bModelConfig\.gemma3_1b\(\)",
    fix=lambda s: re.sub(r"\bModelConfig\.gemma3_1b\(\)", "ModelConfig.gemma3_1b_it()", s),
    reason="ModelConfig.gemma3_1b() does not exist in google-tunix 0.1.6+: gemma3_1b_it()",
)

GRPO_CONFIG_KEYWORD_REPAIR = Repair(
    name="algo_config",
    detect=r"[(,]\s*grpo_config\s*=(?!=)",
    fix=lambda s: re.sub(r"([(,]\s*)grpo_config\s*=(?!=)", r"\1algo_config=", s),
    reason="GRPOLearner(grpo_config=...) is the 0.1.3 keyword; 0.1.4+ takes algo_config=",
)

TUNIX_REWARD_LIST_REPAIR = Repair(
    name="reward_fns",
    detect=r"\breward_fns\s*=\s*\[[^\]]*\]",
    fix=lambda s: re.sub(r"\breward_fns\s*=\s*\[[^\]]*\]", "reward_fns=DSA_REWARD_FNS", s),
    reason="GSM8K reward list -> DSA_REWARD_FNS (strict format, partial format, gym rubric)",
)

TRL_REWARD_LIST_REPAIR = Repair(
    name="reward_funcs",
    detect=r"\breward_funcs\s*=\s*\[[^\]]*\]",
    fix=lambda s: re.sub(r"\breward_funcs\s*=\s*\[[^\]]*\]", "reward_funcs=DSA_REWARD_FUNCS", s),
    reason="GSM8K reward list -> DSA_REWARD_FUNCS (strict format, partial format, gym rubric)",
)

GSM8K_PATH_REPAIR = Repair(
    name="gsm8k_paths",
    detect=r"^\w+\s*=\s*[rf]?[\"'][^\"'\n]*gsm8k[^\"'\n]*[\"']",
    fix=lambda s: re.sub(
        r"^(\w+\s*=\s*[rf]?[\"'][^\"'\n]*)gsm8k([^\"'\n]*[\"'])", r"\1dipg\2", s, flags=re.MULTILINE
    ),
    reason="GSM8K data paths renamed to DIPG ones",
)

# A relative path literal anywhere (e.g. a checkpoint folder passed to a call): "./gemma3_gsm8k_grpo".
GSM8K_RELATIVE_PATH_REPAIR = Repair(
    name="gsm8k_relative_paths",
    detect=r"([\"'])\.{1,2}/[^\"'\n]*gsm8k[^\"'\n]*\1",
    fix=lambda s: re.sub(
        r"([\"'])(\.{1,2}/[^\"'\n]*)gsm8k([^\"'\n]*)\1", lambda m: m.group(1) + m.group(2) + "dipg" + m.group(3) + m.group(1), s
    ),
    reason="GSM8K output paths renamed to DIPG ones",
)

# name used in code -> the import that provides it (google-tunix 0.1.7 module layout).
TUNIX_GRPO_IMPORTS = {
    "metrics_logger": "from tunix.sft import metrics_logger",
    "rl_cluster_lib": "from tunix.rl import rl_cluster as rl_cluster_lib",
    "GRPOConfig": "from tunix.rl.grpo.grpo_learner import GRPOConfig",
    "GRPOLearner": "from tunix.rl.grpo.grpo_learner import GRPOLearner",
    "base_rollout": "from tunix.rl.rollout import base_rollout",
}
_IMPORT_MARK = "# DSA kit: GRPO imports the base notebook lacked"


def _imported(name: str, code: str) -> bool:
    """Whether an import line binds ``name`` (``from m import x as tmetrics`` binds tmetrics, not x)."""
    for match in re.finditer(r"^\s*(from\s+\S+\s+)?import\s+([^\n#]*)", code, re.MULTILINE):
        for item in match.group(2).replace("(", " ").replace(")", " ").split(","):
            words = item.split()
            if not words:
                continue
            if len(words) >= 3 and words[1] == "as":
                bound = words[2]
            else:
                bound = words[0] if match.group(1) else words[0].split(".")[0]
            if bound == name:
                return True
    return False


def _without_imports(source: str) -> str:
    """The source without its import lines (a name there is imported, not used)."""
    return re.sub(r"^\s*(from\s+\S+\s+)?import\s+[^\n]*$", "", source, flags=re.MULTILINE)


def _missing_grpo_imports(source: str, code: str) -> list[str]:
    return [
        name for name in TUNIX_GRPO_IMPORTS
        if re.search(rf"(?<![\w.]){re.escape(name)}\b", _without_imports(source)) and not _imported(name, code)
    ]


def _add_grpo_imports(source: str, code: str = "") -> str:
    missing = _missing_grpo_imports(source, code or source)
    if not missing:
        return source
    block = [_IMPORT_MARK] + [TUNIX_GRPO_IMPORTS[name] for name in missing]
    return "\n".join(block) + "\n" + source


GRPO_IMPORTS_REPAIR = Repair(
    name="grpo_imports",
    detect=r"\b(" + "|".join(TUNIX_GRPO_IMPORTS) + r")\b",
    fix=_add_grpo_imports,
    needs=lambda source, code: bool(_missing_grpo_imports(source, code)),
    fix_sees_notebook=True,
    reason="GRPO names used but never imported: imports added",
    describe=lambda source, code: "GRPO names used but never imported (its recorded run died on a NameError): "
    "imports added for " + ", ".join(_missing_grpo_imports(source, code)),
)

# A top-level call of the base's evaluate(...): before any .train( the baseline runs in the kit's
# evaluation cell (removed here); after training it becomes the kit's re-evaluation.
EVAL_CALL_RULE = Rule(
    name="evaluation-call",
    action="replace",
    patterns=(r"^(\(?\w+(\s*,\s*\w+)*\)?\s*=\s*)?evaluate\(",),
    reason="GSM8K evaluation call -> DIPG evaluation (strict format + gym rubric)",
    after=r"\.train\(",
    cells_after=("evaluate_rerun",),
)


def _knob(pattern: str, name: str, target: str) -> Repair:
    """A literal run-size knob (``max_steps=60``, ``max_seq_length = 1024``) -> the parameter."""
    regex = rf"\b({pattern})(\s*=\s*)\d+\b"
    return Repair(
        name=f"knob_{name}",
        detect=regex,
        fix=lambda s: re.sub(regex, rf"\1\2{target}", s),
        reason=f"{name} literal -> {target} (parameters cell)",
    )


def _knob_or_own(name: str, target: str) -> Repair:
    """A literal knob the run may override (``gradient_accumulation_steps=4`` ->
    ``gradient_accumulation_steps=GRADIENT_ACCUMULATION_STEPS or 4``): the parameter's 0 keeps the author's value."""
    regex = rf"\b({name})(\s*=\s*)(\d+)\b"
    return Repair(
        name=f"knob_{name}",
        detect=regex,
        fix=lambda s: re.sub(regex, rf"\1\2{target} or \3", s),
        reason=f"{name} literal -> {target} or the literal (parameters cell; 0 keeps the notebook's value)",
    )


HF_KNOB_REPAIRS = (
    _knob_or_own("gradient_accumulation_steps", "GRADIENT_ACCUMULATION_STEPS"),
    _knob("max_steps", "max_steps", "MAX_STEPS"),
    _knob("max_seq_length", "max_seq_length", "MAX_SEQ_LENGTH"),
    _knob("max_length", "max_length", "MAX_SEQ_LENGTH"),
    _knob("max_prompt_length", "max_prompt_length", "MAX_PROMPT_LENGTH"),
    _knob("max_completion_length", "max_completion_length", "MAX_NEW_TOKENS"),
    _knob("logging_steps", "logging_steps", "LOGGING_STEPS"),
    _knob("sft_max_steps", "sft_max_steps", "MAX_STEPS"),
    _knob("grpo_max_steps", "grpo_max_steps", "GRPO_MAX_STEPS"),
    _knob("num_generations", "num_generations", "NUM_GENERATIONS"),
)

# The HF trainers' datasets: the kit's rows are `dataset` (trl_sft_data / trl_grpo_data); the base's
# GSM8K test split has no DIPG counterpart in training (DIPG test rows are generated and scored).
TRAIN_DATASET_REPAIR = Repair(
    name="train_dataset",
    detect=r"\btrain_dataset(\s*=\s*)train_dataset\b",
    fix=lambda s: re.sub(r"\btrain_dataset(\s*=\s*)train_dataset\b", r"train_dataset\1dataset", s),
    reason="trainer reads the kit's masked DIPG rows (dataset) instead of the GSM8K train split",
)
EVAL_DATASET_REPAIR = Repair(
    name="eval_dataset",
    detect=r"^[ \t]*eval_dataset\s*=\s*eval_dataset\s*,?[ \t]*\n",
    fix=lambda s: re.sub(r"^[ \t]*eval_dataset\s*=\s*eval_dataset\s*,?[ \t]*\n", "", s, flags=re.MULTILINE),
    reason="GSM8K eval split dropped: DIPG test rows are generated and scored in the evaluation cells",
)


def _model_name_repair(variable: str) -> Repair:
    regex = rf"\b({variable})(\s*=\s*)[\"'][^\"'\n]+[\"']"
    return Repair(
        name=f"model_{variable}",
        detect=regex,
        fix=lambda s: re.sub(regex, r"\1\2MODEL_ID", s),
        reason=f"hard-coded {variable} -> MODEL_ID (parameters cell)",
    )


MODEL_NAME_REPAIR = _model_name_repair("model_name")
MODEL_ID_REPAIR = _model_name_repair("model_id")
