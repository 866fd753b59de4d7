"""Repairs every family gets (headless safety, install guards) and the secret scrubber.

Each repair is applied only where its pattern is found, and its result no longer matches the
pattern, so a second run finds nothing to do. The helpers they call (``dsa_input``,
``dsa_login``, ``dsa_tensorboard``, ``dsa_pip_install``) are defined by ``adapters/cells/headless.py``,
which the patcher inserts before the first base cell.
"""

from __future__ import annotations

import re

from .base import Repair

# (what to call it in the report, regex). Values are never printed: only the kind.
SECRET_PATTERNS = (
    ("Hugging Face token", r"hf_[A-Za-z0-9]{30,}"),
    ("Kaggle API key", r"(?i)(?:kaggle_key|[\"']key[\"'])\W{0,8}[0-9a-f]{32}\b"),
    ("W&B API key", r"(?i)wandb\.login\(\s*key\s*=\s*[\"'][0-9a-f]{40}[\"']"),
)

_HF_LITERAL = re.compile(r"([rbuf]?)([\"'])hf_[A-Za-z0-9]{30,}\2")
_KAGGLE_LITERAL = re.compile(r"(?i)((?:kaggle_key|[\"']key[\"'])\W{0,8}?)([\"'])[0-9a-f]{32}\2")
_WANDB_LITERAL = re.compile(r"(?i)(wandb\.login\(\s*key\s*=\s*)([\"'])[0-9a-f]{40}\2")
_ENV = '__import__("os").environ.get("{name}", "")'


def scrub_secrets(source: str) -> tuple[str, list[str]]:
    """Replace hard-coded credential literals by environment look-ups; return (source, kinds found)."""
    kinds = []
    if _HF_LITERAL.search(source):
        kinds.append("Hugging Face token")
        source = _HF_LITERAL.sub(_ENV.format(name="HF_TOKEN"), source)
    if _KAGGLE_LITERAL.search(source):
        kinds.append("Kaggle API key")
        source = _KAGGLE_LITERAL.sub(lambda m: m.group(1) + _ENV.format(name="KAGGLE_KEY"), source)
    if _WANDB_LITERAL.search(source):
        kinds.append("W&B API key")
        source = _WANDB_LITERAL.sub(lambda m: m.group(1) + _ENV.format(name="WANDB_API_KEY"), source)
    # Anything left (a token outside a string literal, in a comment or markdown) is blanked.
    for kind, pattern in SECRET_PATTERNS:
        if re.search(pattern, source):
            kinds.append(kind)
            source = re.sub(pattern, "<redacted>", source)
    return source, kinds


def _sub(pattern: str, replacement):
    return lambda source: re.sub(pattern, replacement, source, flags=re.MULTILINE)


# `!pip install X`, `%pip install X`, `!uv pip install X`, `!python -m pip uninstall -y X`, also indented
# inside if-blocks; IPython expands `{expr}` in shell lines, so those become f-strings.
_PIP_LINE = r"^([ \t]*)[!%]\s*(?:(uv)\s+pip|pip3?|python3?\s+-m\s+pip)\s+(install|uninstall)\b(.*)$"


def _guard_pip(match: re.Match) -> str:
    indent, tool, action, args = match.group(1), match.group(2), match.group(3), match.group(4).strip()
    literal = ("f" if re.search(r"\{[^{}]+\}", args) else "") + repr(args)
    extra = (', tool="uv"' if tool else "") + (f', action="{action}"' if action != "install" else "")
    return f"{indent}dsa_pip_install({literal}{extra})"


# Mirrors the headless cell's _DSA_GPU_ONLY: named in the report as what installs only on a GPU/TPU machine.
GPU_ONLY_PACKAGES = ("vllm", "bitsandbytes", "flash-attn", "flash_attn", "xformers", "triton", "deepspeed",
                     "liger-kernel", "libtpu", "cut-cross-entropy", "jax[tpu]")
_PIP_REASON = ("pip install guarded: a prepared environment is left as it is (nothing installed that imports, no "
               "GPU/TPU-only package without the hardware, torch/jax never replaced); on Colab/Kaggle it runs as "
               "written and a failure raises")


def _describe_pip(source: str, _code: str = "") -> str:
    lines = [m.group(4) for m in re.finditer(_PIP_LINE, source, re.MULTILINE) if m.group(3) == "install"]
    words = {w.strip("\"'").lower() for line in lines for w in line.split()}
    gpu = sorted({p for p in GPU_ONLY_PACKAGES for w in words if w == p or w.startswith((p + "=", p + ">", p + "<"))})
    return _PIP_REASON + (f"; GPU/TPU only: {', '.join(gpu)} installed only where a GPU/TPU is present" if gpu else "")


def _is_form_line(line: str) -> bool:
    """A Colab form line (`#@title …`, `# @param …`, `#@markdown …`) or a comment/blank line."""
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _cell_magic_index(source: str) -> int | None:
    """Line index of a cell magic (`%%name`) that only comments/blank lines precede, else None."""
    lines = source.split("\n")
    for index, line in enumerate(lines):
        if line.startswith("%%"):
            return index
        if not _is_form_line(line):
            return None
    return None


def _fix_cell_magic(source: str) -> str:
    """`%%capture` is dropped (it swallowed the errors of the cell); another cell magic moves to the
    first line, above Colab's form lines (Jupyter accepts a cell magic only there)."""
    index = _cell_magic_index(source)
    if index is None:
        return source
    lines = source.split("\n")
    magic = lines.pop(index)
    if magic.split()[0] == "%%capture":
        return "\n".join(lines)
    return "\n".join([magic] + lines)


def _describe_cell_magic(source: str, _code: str = "") -> str:
    index = _cell_magic_index(source)
    magic = source.split("\n")[index].split()[0] if index is not None else "%%"
    if magic == "%%capture":
        return "%%capture dropped: it hid the output and the failure of the cell's commands"
    return f"{magic} moved above the Colab form lines (Jupyter runs a cell magic only from the first line)"


_HOST_IMPORT = re.compile(r"^(from\s+(?:google\.colab|kaggle_secrets)\s+import\s+([\w ,]+))$", re.MULTILINE)


def _guard_host_imports(source: str) -> str:
    """Secrets through dsa_secret(); an unguarded top-level Colab/Kaggle import -> None elsewhere."""
    source = re.sub(r"\buserdata\.get\(", "dsa_secret(", source)
    source = re.sub(r"\bUserSecretsClient\(\)\.get_secret\(", "dsa_secret(", source)

    def guard(match: re.Match) -> str:
        names = [n.strip() for n in match.group(2).split(",") if n.strip()]
        return (f"try:\n    {match.group(1)}\nexcept ImportError:  # not on this host\n    "
                + " = ".join(names) + " = None")

    return _HOST_IMPORT.sub(guard, source)


COMMON_REPAIRS = (
    Repair(
        name="input",
        detect=r"(?<![\w.])input\(",
        fix=_sub(r"(?<![\w.])input\(", "dsa_input("),
        reason="input() made headless-safe (dsa_input answers from DSA_INPUT or its default)",
    ),
    Repair(
        name="kagglehub_login",
        detect=r"\bkagglehub\.login\(\s*\)",
        fix=_sub(r"\bkagglehub\.login\(\s*\)", 'dsa_login("kaggle")'),
        reason="kagglehub.login() made headless-safe (credentials from the environment or secrets)",
    ),
    Repair(
        name="notebook_login",
        detect=r"(?<![\w.])notebook_login\(\s*\)",
        fix=_sub(r"(?<![\w.])notebook_login\(\s*\)", 'dsa_login("huggingface")'),
        reason="notebook_login() made headless-safe (HF_TOKEN from the environment or secrets)",
    ),
    Repair(
        name="wandb_login",
        detect=r"\bwandb\.login\(\s*\)",
        fix=_sub(r"\bwandb\.login\(\s*\)", 'dsa_login("wandb")'),
        reason="wandb.login() made headless-safe (WANDB_API_KEY from the environment, else offline)",
    ),
    Repair(
        name="tensorboard",
        detect=r"^[ \t]*%(?:tensorboard|load_ext\s+tensorboard)\b.*$",
        fix=lambda s: re.sub(
            r"^([ \t]*)%(tensorboard|load_ext\s+tensorboard)\b(.*)$",
            lambda m: f"{m.group(1)}dsa_tensorboard({(m.group(2).split()[0] + m.group(3)).strip()!r})",
            s,
            flags=re.MULTILINE,
        ),
        reason="%tensorboard made headless-safe (runs only in an interactive front end)",
    ),
    Repair(
        name="pip_install",
        detect=_PIP_LINE,
        fix=_sub(_PIP_LINE, _guard_pip),
        reason=_PIP_REASON,
        describe=_describe_pip,
    ),
    Repair(
        name="cell_magic",
        detect=r"^%%",
        fix=_fix_cell_magic,
        needs=lambda source, _code: _cell_magic_index(source) is not None
        and (_cell_magic_index(source) > 0 or source.startswith("%%capture")),
        reason="cell magic made Jupyter-safe",
        describe=_describe_cell_magic,
    ),
    Repair(
        name="host_imports",
        detect=r"^from\s+(?:google\.colab|kaggle_secrets)\s+import|\buserdata\.get\(|UserSecretsClient\(\)\.get_secret\(",
        fix=_guard_host_imports,
        needs=lambda source, _code: _guard_host_imports(source) != source,
        reason="Colab/Kaggle-only imports made safe elsewhere (secrets through dsa_secret: environment, then "
        "the host's secret store)",
    ),
)


# Knobs the parameters cell owns: a base cell that assigns one after it would undo papermill's -p.
OWNED_PARAMETERS = ("MODEL_ID", "DATASET_ID", "MAX_STEPS", "MAX_SEQ_LENGTH", "MAX_PROMPT_LENGTH", "MAX_NEW_TOKENS")
# A haystack prompt is about 1k Gemma tokens (FIELD_NOTES §1): smaller prompt budgets cut the context.
MIN_PROMPT_LENGTH = 1024


def _owned_assignments(source: str, names: tuple[str, ...]) -> list[tuple[int, str, str]]:
    """[(line index, name, value text)] for single-line top-level ``NAME = value`` of owned names."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    lines = source.split("\n")
    found = []
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id in names
            and node.lineno == node.end_lineno
            and node.col_offset == 0
        ):
            found.append((node.lineno - 1, node.targets[0].id, ast.get_source_segment(source, node.value) or ""))
    del lines
    return found


def parameter_owner_repairs() -> tuple[Repair, ...]:
    """One repair per owned knob a base cell re-assigns: the assignment becomes a comment."""
    names = OWNED_PARAMETERS
    repairs = []
    for name in names:

        def fix(source: str, name=name) -> str:
            lines = source.split("\n")
            for index, owned, value in _owned_assignments(source, (name,)):
                lines[index] = f"# {owned} is set in the parameters cell (base notebook had {owned} = {value})"
            return "\n".join(lines)

        def needs(source: str, _code: str, name=name) -> bool:
            return bool(_owned_assignments(source, (name,)))

        reason = f"{name} now comes from the parameters cell (papermill -p)"
        if name == "MAX_PROMPT_LENGTH":
            reason += f" (a haystack prompt needs about {MIN_PROMPT_LENGTH} tokens)"
        repairs.append(Repair(name=f"owned_{name}", detect=rf"^{name}\s*=", fix=fix, reason=reason, needs=needs))
    return tuple(repairs)
