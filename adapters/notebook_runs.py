"""Run a DSA notebook (notebooks/dsa/) end to end with papermill on its family kernel, offline.

Shared by the end-to-end tests (``tests/test_notebooks_e2e.py``) and the benchmark
(``benchmarks/bench_notebooks.py``) so both run exactly the same thing:

``papermill notebooks/dsa/<nb>.ipynb RUN_DIR/executed.ipynb -k <kernel> --cwd RUN_DIR -p ...`` with
``MODEL_ID``/``DATASET_ID`` as absolute paths, ``OUTPUT_DIR=RUN_DIR/out`` and the small knobs below,
so nothing lands in the repository. The family kernels are registered with ``--sys-prefix`` inside
their own venv; ``JUPYTER_PATH`` points papermill at that venv's ``share/jupyter``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "tiny-gemma3"
# A tiny ChatML model (SmolLM2's tokenizer and template): real notebooks written for a non-Gemma model run on it
# with its own template and stop ids (issue 13), the others on the tiny Gemma-3.
CHATML_MODEL = ROOT / "models" / "tiny-smollm2"
REAL_NOTEBOOK_MODELS = {"unsloth_qwen3_4b_grpo": CHATML_MODEL}
DATA = ROOT / "data" / "dipg"

# 3 optimiser steps; rows of at most 300 tokens (the shortest DIPG rows are ~260, and the 262k-entry
# vocabulary makes every token costly on CPU), so the first 10 train rows leave 2 (one batch, the same
# rows every step: the loss must fall); 2 test rows generated with 16 new tokens.
# The system prompt stays off so that every family trains the same conversations (the tests compare the
# trained-token share with the masking core on the plain rows). One micro-batch per optimiser step, stated:
# the 2 rows make one batch, so with the bases' gradient_accumulation_steps=4 the Trainer already steps at
# each epoch's end (measured: the same training time either way); the knob matters for larger runs.
KNOBS = {"MAX_STEPS": 3, "MAX_SEQ_LENGTH": 300, "MAX_TRAIN_ROWS": 10, "NUM_EVAL_ROWS": 2, "MAX_NEW_TOKENS": 16,
         "GRADIENT_ACCUMULATION_STEPS": 1, "LOGGING_STEPS": 1, "USE_SYSTEM_PROMPT": False}
# GRPO after SFT: 2 steps of 2 completions; prompts up to 280 tokens leave 20 for the completion
# (Unsloth's base sets max_completion_length = max_seq_length - max_prompt_length).
GRPO_KNOBS = {"GRPO_MAX_STEPS": 2, "NUM_GENERATIONS": 2, "MAX_PROMPT_LENGTH": 280}


@dataclass(frozen=True)
class Family:
    """One notebook family: its DSA notebook, kernel, venv and the evaluation files it writes."""

    name: str
    notebook: str
    kernel: str
    venv: str
    eval_labels: tuple[str, ...]
    extra: tuple[tuple[str, object], ...] = ()  # knobs beyond KNOBS (papermill -p)
    # Why this family is not run yet even with its venv present (None: it runs).
    not_run: str | None = None


FAMILIES = {
    "trl": Family("trl", "trl_sft_dsa", "dsa-core", ".venv", ("after_SFT",)),
    "unsloth": Family(
        "unsloth", "unsloth_gemma3_sft_grpo_dsa", "dsa-unsloth", ".venv-unsloth", ("after_GRPO",),
        extra=tuple(GRPO_KNOBS.items()),
    ),
    "tunix": Family(
        "tunix", "tunix_gemma3_sft_grpo_dsa", "dsa-tunix", ".venv-tunix", ("after_SFT", "after_GRPO"),
        # Tunix's sampler pads every prompt to a budget that must hold the longest one (it rounds up to
        # a power of two past MAX_PROMPT_LENGTH and then overflows its cache): the 2 test rows need 1024.
        extra=tuple({**GRPO_KNOBS, "MAX_PROMPT_LENGTH": 1024}.items()),
    ),
}


def missing_requirements(family: Family) -> str | None:
    """Why ``family`` cannot run here (model, data, venv or kernel absent), else None."""
    venv = ROOT / family.venv
    if not MODEL.exists():
        return f"the tiny model is missing ({MODEL}; make models)"
    if not DATA.exists():
        return f"the offline dataset is missing ({DATA}; make data)"
    if not (venv / "bin" / "python").exists():
        return f"{family.venv} is absent (make env-families builds it)"
    if not (venv / "share" / "jupyter" / "kernels" / family.kernel).is_dir():
        return f"kernel {family.kernel} is not registered in {family.venv} (make env-families)"
    if not (Path(sys.executable).parent / "papermill").exists():
        return "papermill is not installed in this environment"
    return None


def papermill_command(family: Family, run_dir: Path) -> tuple[list[str], dict]:
    """(argv, env) of the papermill run of ``family`` in ``run_dir``."""
    params = {"MODEL_ID": str(MODEL), "DATASET_ID": str(DATA), "OUTPUT_DIR": str(run_dir / "out"), **KNOBS,
              **dict(family.extra)}
    cmd = [str(Path(sys.executable).parent / "papermill"), str(ROOT / "notebooks" / "dsa" / f"{family.notebook}.ipynb"),
           str(run_dir / "executed.ipynb"), "-k", family.kernel, "--cwd", str(run_dir), "--no-progress-bar"]
    for name, value in params.items():
        cmd += ["-p", name, str(value)]
    env = {**os.environ, "JUPYTER_PATH": str(ROOT / family.venv / "share" / "jupyter"), "DSA_HEADLESS": "1",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled"}
    return cmd, env


def run_notebook(family: Family, run_dir: Path, timeout: float = 1200, poll: float = 0.2) -> dict:
    """Run it; -> {"returncode", "stderr", "wall_s", "peak_rss_mb", "cpu_s", "executed", "out_dir"}.

    Peak memory is the largest summed RSS of papermill and all its descendants (the kernel), polled
    every ``poll`` seconds with psutil (None when psutil is absent).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    cmd, env = papermill_command(family, run_dir)
    return {**_run_with_peak(cmd, env, run_dir, timeout, poll),
            "executed": run_dir / "executed.ipynb", "out_dir": run_dir / "out"}


# ----------------------------------------------------------------------------- real public notebooks
# The real base notebooks (../shared/base_notebooks/, issue 10) are test inputs, never part of the kit:
# each is adapted by the CLI into a run folder and run there on its family's kernel with the same knobs.

ENVIRONMENTS = {"core": (".venv", "dsa-core"), "unsloth": (".venv-unsloth", "dsa-unsloth"),
                "tunix": (".venv-tunix", "dsa-tunix")}
# Tunix's sampler pads every prompt to a budget that must hold the longest one (see FAMILIES["tunix"]).
ENVIRONMENT_KNOBS = {"core": {}, "unsloth": {}, "tunix": {"MAX_PROMPT_LENGTH": 1024}}


# Skip reason where the real notebooks are absent (a user's clone): the one skip CI allows (tests/conftest.py).
NO_REAL_NOTEBOOKS = "real base notebooks absent (../shared/base_notebooks/ or $DSA_BASE_NOTEBOOKS)"


def real_notebooks_dir() -> Path | None:
    """``$DSA_BASE_NOTEBOOKS``, else the first ``shared/base_notebooks`` beside the repository or above it."""
    explicit = os.environ.get("DSA_BASE_NOTEBOOKS")
    if explicit:
        return Path(explicit) if Path(explicit).is_dir() else None
    for parent in ROOT.parents:
        candidate = parent / "shared" / "base_notebooks"
        if candidate.is_dir():
            return candidate
    return None


def real_notebooks() -> list[Path]:
    folder = real_notebooks_dir()
    return sorted(folder.glob("*.ipynb")) if folder else []


def environment_of(recipe) -> str:
    """The family environment a recipe's notebooks run in (``Recipe.environment``)."""
    return getattr(recipe, "environment", None) or "core"


def pip_freeze(venv: str) -> str:
    """``pip freeze`` of a family venv (what a notebook run must leave unchanged)."""
    python = ROOT / venv / "bin" / "python"
    return subprocess.run([str(python), "-m", "pip", "freeze", "--all"], capture_output=True, text=True,
                          check=True).stdout


def _read_json(path: Path):
    import json

    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def run_real_notebook(path: Path, run_dir: Path, timeout: float = 1800, knobs: dict | None = None) -> dict:
    """Adapt ``path`` with the CLI, run the output on its family kernel; -> what the run left.

    Keys: name, family, environment, adapt_rc, adapt_s, report (the CLI's table), returncode, wall_s,
    peak_rss_mb, stderr, freeze_changed (pip freeze of the family venv before vs after), train_log,
    grpo_log, evals ({label: summary}), executed, out_dir.
    """
    from .notebook_io import read_notebook
    from .patcher import detect_family

    run_dir.mkdir(parents=True, exist_ok=True)
    adapted = run_dir / "adapted.ipynb"
    recipe, _why = detect_family(read_notebook(str(path)))
    environment = environment_of(recipe)
    venv, _kernel = ENVIRONMENTS[environment]
    start = time.perf_counter()
    adapt = subprocess.run([sys.executable, str(ROOT / "scripts" / "adapt_dsa_notebook.py"), str(path), "-o",
                            str(adapted), "--force"], capture_output=True, text=True, cwd=ROOT)
    result = {"name": path.stem, "family": recipe.name, "environment": environment, "adapt_rc": adapt.returncode,
              "adapt_s": time.perf_counter() - start, "report": adapt.stdout + adapt.stderr}
    (run_dir / "report.txt").write_text(result["report"], encoding="utf-8")
    if adapt.returncode != 0:
        return {**result, "returncode": None, "wall_s": None, "peak_rss_mb": None, "stderr": "",
                "freeze_changed": False}
    params = {**KNOBS, **GRPO_KNOBS, **ENVIRONMENT_KNOBS[environment], "MODEL_ID": str(real_notebook_model(path)),
              **(knobs or {})}
    before = pip_freeze(venv)
    run = run_on_kernel(adapted, run_dir, environment, params, timeout)
    after = pip_freeze(venv)
    out = run_dir / "out"
    evals = {}
    for eval_path in sorted(out.glob("eval_*.json")) if out.is_dir() else []:
        evals[eval_path.stem[len("eval_"):]] = (_read_json(eval_path) or {}).get("summary")
    return {**result, **run, "freeze_changed": before != after, "freeze_before": before, "freeze_after": after,
            "train_log": _read_json(out / "train_log.json"), "grpo_log": _read_json(out / "grpo_log.json"),
            "evals": evals, "executed": run_dir / "executed.ipynb", "out_dir": out}


def real_notebook_model(path: Path) -> Path:
    """The offline model a real notebook runs on: the tiny ChatML one for a non-Gemma base, else the tiny Gemma-3."""
    return REAL_NOTEBOOK_MODELS.get(Path(path).stem, MODEL)


def environment_missing(environment: str, model: Path = MODEL) -> str | None:
    """Why a notebook of ``environment`` cannot run here on ``model`` (model, data, venv, kernel or papermill
    absent). None when nothing is missing.
    """
    venv, kernel = ENVIRONMENTS[environment]
    if not model.exists():
        return f"the tiny model is missing ({model}; make models)"
    if not DATA.exists():
        return f"the offline dataset is missing ({DATA}; make data)"
    if not (ROOT / venv / "bin" / "python").exists():
        return f"{venv} is absent (make env / make env-families builds it)"
    if not (ROOT / venv / "share" / "jupyter" / "kernels" / kernel).is_dir():
        return f"kernel {kernel} is not registered in {venv} (make env / make env-families)"
    if not (Path(sys.executable).parent / "papermill").exists():
        return "papermill is not installed in this environment"
    return None


def run_on_kernel(notebook: Path, run_dir: Path, environment: str, params: dict,
                  timeout: float = 1800) -> dict:
    """papermill ``notebook`` on ``environment``'s kernel in ``run_dir``, offline, installing nothing.

    ``MODEL_ID``/``DATASET_ID`` default to the tiny model and the offline split, ``OUTPUT_DIR`` is
    ``run_dir/out``; ``params`` add to or override them. -> :func:`_run_with_peak`'s dict plus
    ``executed`` and ``out_dir``.
    """
    venv, kernel = ENVIRONMENTS[environment]
    run_dir.mkdir(parents=True, exist_ok=True)
    params = {"MODEL_ID": str(MODEL), "DATASET_ID": str(DATA), "OUTPUT_DIR": str(run_dir / "out"), **params}
    cmd = [str(Path(sys.executable).parent / "papermill"), str(notebook), str(run_dir / "executed.ipynb"),
           "-k", kernel, "--cwd", str(run_dir), "--no-progress-bar"]
    for name, value in params.items():
        cmd += ["-p", name, str(value)]
    env = {**os.environ, "JUPYTER_PATH": str(ROOT / venv / "share" / "jupyter"), "DSA_HEADLESS": "1",
           "DSA_SKIP_INSTALL": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled", "PIP_NO_INDEX": "1"}
    return {**_run_with_peak(cmd, env, run_dir, timeout), "executed": run_dir / "executed.ipynb",
            "out_dir": run_dir / "out"}


# ----------------------------------------------------------------------------- reference values
# What the kit itself computes on the rows a notebook run used: the tests compare the files a run
# writes (train_log.json, eval_*.json) with these, so a notebook that logs or scores wrongly is caught.

EVAL_SUMMARY_KEYS = ("strict_format", "gym_mean_reward", "safe", "hallucination", "refusal", "format_error")


def masking_reference(max_train_rows: int, max_seq_length: int, model: Path = MODEL) -> dict:
    """The masking core on a notebook's SFT rows (the first ``max_train_rows`` train rows of DATA), with
    ``model``'s tokenizer: the kit's Gemma-3 template for a Gemma tokenizer, else the tokenizer's own.

    -> {"kept", "dropped", "trained_tokens", "total_tokens", "trained_share"}; rows whose reply
    ``max_seq_length`` would cut are dropped, as the kit's SFT cells do.
    """
    from transformers import AutoTokenizer

    from .chat_template import choose_chat_template
    from .dataset import load_splits
    from .masking import mask_batch

    tokenizer = AutoTokenizer.from_pretrained(model)
    choose_chat_template(tokenizer)
    rows = list(load_splits(str(DATA))["train"])[:max_train_rows]
    conversations = [[m for m in row["messages"] if m["role"] in ("user", "assistant")] for row in rows]
    masked, dropped = mask_batch(conversations, tokenizer, max_seq_length)
    trained = sum(sum(example.loss_mask) for _, example in masked)
    total = sum(len(example.input_ids) for _, example in masked)
    return {"kept": len(masked), "dropped": len(dropped), "trained_tokens": trained, "total_tokens": total,
            "trained_share": trained / total if total else None}


def kit_eval_summary(replies: list[str]) -> dict:
    """The kit's evaluation (adapters/evaluation.py + the gym) of ``replies`` against the first test rows.

    ``replies[n]`` answers test row n of DATA, as the notebooks' evaluation cell pairs them
    (``dsa_eval_rows = dsa_test_rows[:NUM_EVAL_ROWS]``). The replies are scored as saved: the notebook's
    ``dsa_generate`` has already put a pre-filled ``<think>`` back, and its summary scored that same text.
    -> the notebook summary's fields: rows, strict_format, failure_kinds and EVAL_SUMMARY_KEYS (the kit
    rounds rates to 6 places).
    """
    from .dataset import load_splits
    from .evaluation import evaluate_rows, summarise

    rows = list(load_splits(str(DATA))["test"])[: len(replies)]
    if len(rows) != len(replies):
        raise ValueError(f"{len(replies)} replies but only {len(rows)} test rows in {DATA}")
    overall = summarise(evaluate_rows(rows, list(enumerate(replies))))["overall"]
    gym = overall["gym"]
    return {
        "rows": overall["n"],
        "strict_format": overall["strict_format_rate"],
        "failure_kinds": {kind: count for kind, count in overall["strict_failures"].items() if count},
        "gym_mean_reward": gym["mean_reward"],
        "safe": gym["safe_rate"],
        "hallucination": gym["hallucination_rate"],
        "refusal": gym["refusal_rate"],
        "format_error": gym["format_error_rate"],
    }


def eval_mismatches(summary: dict, replies: list[str], tolerance: float = 1e-6) -> list[str]:
    """Where a notebook's evaluation ``summary`` of ``replies`` differs from :func:`kit_eval_summary`.

    -> one line per differing field (empty: they agree). Rates and the mean reward may differ by
    ``tolerance`` (the kit rounds to 6 places, the notebook's cell does not).
    """
    kit = kit_eval_summary(replies)
    found = [f"{key}: notebook {summary.get(key)!r}, kit {kit[key]!r}" for key in ("rows", "failure_kinds")
             if summary.get(key) != kit[key]]
    for key in EVAL_SUMMARY_KEYS:
        value = summary.get(key)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or abs(value - kit[key]) > tolerance:
            found.append(f"{key}: notebook {value!r}, kit {kit[key]!r}")
    return found


def _run_with_peak(cmd: list[str], env: dict, run_dir: Path, timeout: float, poll: float = 0.2) -> dict:
    """Run ``cmd``; -> returncode, stderr, wall_s, the peak summed RSS of it and its descendants, and their
    CPU seconds (user + system, polled: what a busy machine does not inflate as it does the wall time)."""
    try:
        import psutil
    except ImportError:
        psutil = None
    start = time.perf_counter()
    with open(run_dir / "papermill.stderr", "w+", encoding="utf-8") as err:
        proc = subprocess.Popen(cmd, cwd=run_dir, env=env, stdout=subprocess.DEVNULL, stderr=err)
        peak = 0
        cpu: dict[int, float] = {}  # pid -> user + system seconds, last seen (a process's CPU time only grows)
        while proc.poll() is None:
            if psutil is not None:
                try:
                    root = psutil.Process(proc.pid)
                    total = 0
                    for p in [root] + root.children(recursive=True):
                        try:
                            total += p.memory_info().rss
                            times = p.cpu_times()
                            cpu[p.pid] = times.user + times.system
                        except psutil.Error:
                            continue
                    peak = max(peak, total)
                except psutil.Error:
                    pass
            if time.perf_counter() - start > timeout:
                proc.kill()
                break
            time.sleep(poll)
        wall = time.perf_counter() - start
        err.seek(0)
        stderr = err.read()
    return {"returncode": proc.returncode, "stderr": stderr, "wall_s": wall,
            "peak_rss_mb": peak / 2**20 if psutil is not None else None,
            "cpu_s": sum(cpu.values()) if psutil is not None else None}
