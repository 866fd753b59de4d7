"""One evaluation run, end to end, for ``scripts/eval_simple.py`` (the CLI only parses arguments).

``run_evaluation(EvalOptions) -> metrics`` loads the test split, gets responses (a file, or
generation with a model), evaluates every row, and writes the output folder atomically: every
file goes into a temporary folder beside ``out`` which is renamed into place only when complete,
so an error at any step leaves ``out`` as it was (absent, or the previous run with ``--force``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .chat_template import model_prompt
from .dsa_format import THINK_OPEN, restore_prefilled_think
from .errors import DatasetError, DSAError, OutputExistsError
from .evaluation import align_responses, evaluate_rows, load_responses, row_id, summarise
from .report import render_markdown, write_plot

PREFILL = THINK_OPEN + "\n"


@dataclass
class EvalOptions:
    dataset: str
    out: Path
    responses: Path | None = None
    model: Path | None = None
    force: bool = False
    limit: int | None = None
    max_new_tokens: int = 512
    batch_size: int = 8
    dtype: str = "auto"  # the weights' dtype for generation: auto (as saved), float32 or bfloat16
    sample: bool = False
    temperature: float = 1.0
    seed: int = 0
    prefill_think: bool = False
    compare: Path | None = None
    progress: bool = True


def load_test_rows(source: str) -> list[dict]:
    """``load_splits(source)["test"]`` as a list of row dicts; no test split -> :class:`DatasetError`."""
    from .dataset import load_splits

    splits = load_splits(source)
    if "test" not in splits:
        raise DatasetError(f"{source}: the dataset has no 'test' split (splits: {', '.join(sorted(splits))})")
    rows = splits["test"].to_list() if hasattr(splits["test"], "to_list") else list(splits["test"])
    if not rows:
        raise DatasetError(f"{source}: the test split is empty")
    return rows


def load_compare(path: Path) -> dict:
    """Another run's ``metrics.json`` (for ``--compare``)."""
    metrics_path = Path(path) / "metrics.json"
    try:
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{metrics_path}: cannot read the run to compare with ({exc.__class__.__name__})") from exc
    if not isinstance(metrics, dict) or "overall" not in metrics or "by_type" not in metrics:
        raise DatasetError(f"{metrics_path}: not an eval_simple metrics.json")
    return metrics


def _progress_bar(total: int, description: str, enabled: bool):
    if not enabled:
        return None, lambda n: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=description, unit="row")
    return bar, bar.update


def _generate_responses(options: EvalOptions, rows: list[dict]) -> list[tuple[int, str]]:
    """Generate a reply for the first ``limit`` test rows -> ``[(row_index, whole reply)]``."""
    from .generation import generate, load_model

    indices = list(range(len(rows) if options.limit is None else min(options.limit, len(rows))))
    prefill = PREFILL if options.prefill_think else ""
    model, tokenizer = load_model(options.model, dtype=options.dtype)
    # The model's own chat template (Gemma: the kit's rendering), the pre-fill after its generation prompt.
    prompts = [model_prompt(rows[i]["messages"], tokenizer, generation_prefill=prefill) for i in indices]
    bar, update = _progress_bar(len(prompts), "generating", options.progress)
    try:
        completions = generate(
            model, tokenizer, prompts, max_new_tokens=options.max_new_tokens, batch_size=options.batch_size,
            do_sample=options.sample, temperature=options.temperature, seed=options.seed, progress=update,
        )
    finally:
        if bar is not None:
            bar.close()
    # Saved replies are whole replies: the pre-filled tag is put back so the file re-scores as is.
    replies = [restore_prefilled_think(c) if options.prefill_think else c for c in completions]
    return list(zip(indices, replies))


def _dump_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")


def _install(tmp: Path, out: Path, force: bool) -> None:
    """Move the finished ``tmp`` folder to ``out``; with ``force`` an old ``out`` is swapped out first."""
    if out.exists():
        if not force:
            raise OutputExistsError(f"{out}: already exists (use --force to replace it)")
        trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, trash / out.name)
        os.replace(tmp, out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, out)


def run_evaluation(options: EvalOptions) -> dict:
    """Run one evaluation and write ``options.out`` -> the metrics dict (as in ``metrics.json``)."""
    out = Path(options.out)
    if out.exists() and not options.force:
        raise OutputExistsError(f"{out}: already exists (use --force to replace it)")
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out}: exists and is not a folder")
    if options.model is not None:
        from .generation import describe_model_folder, refuse_unsupported

        refuse_unsupported(Path(options.model), describe_model_folder(Path(options.model)))  # before slow loads
    other = load_compare(options.compare) if options.compare is not None else None
    rows = load_test_rows(options.dataset)

    if options.responses is not None:
        pairs = align_responses(rows, load_responses(options.responses), source=str(options.responses))
        if options.limit is not None:
            pairs = pairs[: options.limit]
        generated = None
    elif options.model is not None:
        pairs = _generate_responses(options, rows)
        generated = [{"id": row_id(rows[i], i), "index": i, "response": r} for i, r in pairs]
    else:
        raise DSAError("give --responses FILE or --model PATH")

    bar, update = _progress_bar(len(pairs), "scoring", options.progress)
    try:
        results = evaluate_rows(rows, pairs, prefilled_think=options.prefill_think, progress=update)
    finally:
        if bar is not None:
            bar.close()
    metrics = summarise(results)

    sources = {"dataset": options.dataset}
    sources["responses" if options.responses is not None else "model"] = str(options.responses or options.model)
    if options.model is not None:
        from .generation import generation_dtype, saved_dtype

        dtype = generation_dtype(options.model, options.dtype)
        if options.dtype != "auto":
            sources["weights dtype"] = options.dtype
        elif dtype != "auto":  # half-precision weights run as float32 on a CPU without bfloat16 hardware
            sources["weights dtype"] = f"{dtype} (saved as {saved_dtype(options.model)}; no bfloat16 hardware here)"
    if options.compare is not None:
        sources["compared with"] = str(options.compare)
    labels = (out.name or "this run", Path(options.compare).name if options.compare else "other run")
    if labels[0] == labels[1]:
        labels = (labels[0], f"{labels[1]} (compared)")

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the run folder is an ordinary one
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        _dump_jsonl(tmp / "results.jsonl", results)
        if generated is not None:
            _dump_jsonl(tmp / "responses.jsonl", generated)
        (tmp / "report.md").write_text(render_markdown(metrics, other, labels, sources), encoding="utf-8")
        write_plot(metrics, tmp / "report.png", other, labels)
        _install(tmp, out, options.force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return metrics
