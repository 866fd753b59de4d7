#!/usr/bin/env python
"""Turn a public GSM8K fine-tuning notebook into a DIPG dual-stream notebook.

Example:
  python scripts/adapt_dsa_notebook.py base.ipynb                      # writes base.dsa.ipynb
  python scripts/adapt_dsa_notebook.py base.ipynb -o out.ipynb --model-id models/gemma-3-270m \\
      --dataset-id data/dipg --report-json report.json
  python scripts/adapt_dsa_notebook.py out.ipynb --check              # exit 1 if it would change
  python scripts/adapt_dsa_notebook.py base.ipynb -o nb/x.ipynb --colab-repo me/dsa-kit \
      --kaggle-metadata nb/kernel-metadata.json --kaggle-id me/dsa-x   # then: kaggle kernels push -p nb

Open in Colab badge: --colab-repo OWNER/NAME (and --colab-branch), else the GitHub 'origin' remote of the
git repository holding the output; the path is --colab-path, else the output's path in that repository.
Neither known (or --colab-repo ""): no badge, said in the report. Never a placeholder.

Exit codes: 0 done, 1 --check found a difference, 2 bad input or usage, 3 unknown notebook family.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.errors import DSAError, NotebookError, OutputExistsError  # noqa: E402
from adapters.notebook_io import dumps_notebook, read_notebook, write_atomic  # noqa: E402
from adapters.patcher import _existing_parameters, adapt, format_report  # noqa: E402
from adapters.recipes import RECIPES  # noqa: E402


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own usage errors: one line, exit 2
        self.exit(2, f"error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="adapt_dsa_notebook.py",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("base", help="the base notebook (.ipynb)")
    parser.add_argument("-o", "--output", help="output path (default: BASE with .dsa.ipynb)")
    parser.add_argument("--family", default="auto", help=f"auto (default) or one of: {', '.join(RECIPES)}")
    parser.add_argument("--model-id", help="MODEL_ID default in the parameters cell (hub id or local path)")
    parser.add_argument("--dataset-id", help="DATASET_ID default in the parameters cell (hub id or local path)")
    parser.add_argument("--colab-path", metavar="PATH",
                        help="the output's path in its GitHub repository, for the Open in Colab badge "
                        "(e.g. notebooks/dsa/x.ipynb; default: the output's path in its git repository, else "
                        "kept from an adapted input)")
    parser.add_argument("--colab-repo", metavar="OWNER/NAME",
                        help="GitHub repository for the Open in Colab badge (default: the 'origin' remote of the "
                        "output's git repository; \"\" = no badge)")
    parser.add_argument("--colab-branch", default="main", help="branch for the Open in Colab badge (default: main)")
    parser.add_argument("--kaggle-metadata", metavar="PATH",
                        help="also write the kernel-metadata.json that `kaggle kernels push` needs")
    parser.add_argument("--kaggle-id", metavar="USER/SLUG",
                        help="kernel id in the Kaggle metadata (default: a slug of the output's name)")
    parser.add_argument("--kaggle-public", action="store_true", help="is_private false in the Kaggle metadata")
    parser.add_argument("--diff", action="store_true", help="print a unified diff of cell sources")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the output would differ")
    parser.add_argument("--report-json", metavar="FILE", help="also write the report as JSON")
    parser.add_argument("--in-place", action="store_true", help="overwrite BASE with the adapted notebook")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output file")
    parser.add_argument("--quiet", action="store_true", help="do not print the report table")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def default_output(base: Path) -> Path:
    """``x.ipynb`` -> ``x.dsa.ipynb`` (``x.dsa.ipynb`` stays itself: adapting it is a re-run)."""
    if base.name.endswith(".dsa.ipynb"):
        return base
    stem = base.name[: -len(".ipynb")] if base.name.endswith(".ipynb") else base.name
    return base.with_name(f"{stem}.dsa.ipynb")


def _cell_text(nb) -> list[str]:
    lines = []
    for index, cell in enumerate(nb.cells):
        lines.append(f"# ---- cell {index} [{cell.cell_type}] id={cell.get('id')}\n")
        lines.extend(line + "\n" for line in cell.source.split("\n"))
    return lines


def source_diff(before, after, before_name: str, after_name: str) -> str:
    """A unified diff of the two notebooks' cell sources (what a person reviews)."""
    return "".join(difflib.unified_diff(_cell_text(before), _cell_text(after), before_name, after_name))


def resolve_output(args, base: Path) -> Path:
    if args.in_place:
        if args.output and Path(args.output).resolve() != base.resolve():
            raise NotebookError("--in-place and -o name different files; pass one of them")
        return base
    output = Path(args.output) if args.output else default_output(base)
    if output.resolve() == base.resolve() and not args.check:
        raise NotebookError(f"{output}: output is the input; pass --in-place to overwrite it")
    return output


_GITHUB = re.compile(r"^(?:https?://|ssh://)?(?:[\w.-]+@)?github\.com[:/]([\w.-]+)/([\w.-]+?)(?:\.git)?/?$")


def github_repo(url: str) -> str | None:
    """``OWNER/NAME`` of a GitHub remote URL (https, ssh or scp form); None for any other host."""
    match = _GITHUB.match(url.strip())
    return f"{match.group(1)}/{match.group(2)}" if match else None


def _git(folder: Path, *argv: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(folder), *argv], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def resolve_colab(args, output: Path) -> tuple[str | None, str | None]:
    """(repo, path in the repo) for the badge: the options, else the output folder's git 'origin' remote."""
    folder = output.resolve().parent
    repo, path = args.colab_repo, args.colab_path
    if repo is None:
        url = _git(folder, "remote", "get-url", "origin")
        repo = github_repo(url) if url else None
    if repo and path is None:
        top = _git(folder, "rev-parse", "--show-toplevel")
        if top:
            try:
                path = output.resolve().relative_to(Path(top).resolve()).as_posix()
            except ValueError:
                path = None
    return (repo or None), path


# Kaggle handles (what kernel-metadata.json's sources take): a dataset as kaggle.com/datasets/OWNER/SLUG or
# kaggle:OWNER/SLUG (a bare OWNER/NAME is a Hugging Face id in this kit); a model instance version as
# OWNER/MODEL/FRAMEWORK/VARIATION/VERSION (kagglehub's form, optionally kaggle.com/models/...).
_KAGGLE_DATASET = re.compile(r"^(?:kaggle:|https?://(?:www\.)?kaggle\.com/datasets/)([\w.-]+/[\w.-]+)/?$")
_KAGGLE_MODEL = re.compile(r"^(?:kaggle:|https?://(?:www\.)?kaggle\.com/models/)?([\w.-]+(?:/[\w.-]+){4})/?$")


def kaggle_metadata(result, output: Path, metadata_path: Path, kernel_id: str | None,
                    public: bool = False) -> tuple[dict, list[str]]:
    """(kernel-metadata.json content, notes) for the adapted notebook written to ``output``."""
    values = _existing_parameters(result.nb)
    notes = []
    dataset_id, model_id = str(values.get("DATASET_ID") or ""), str(values.get("MODEL_ID") or "")
    dataset = _KAGGLE_DATASET.match(dataset_id)
    model = _KAGGLE_MODEL.match(model_id)
    if not dataset:
        notes.append(f"dataset_sources empty: DATASET_ID {dataset_id!r} is not a Kaggle dataset handle "
                     "(kaggle:OWNER/SLUG); the notebook loads it itself (hub or path)")
    if not model and re.fullmatch(r"[\w.-]+(?:/[\w.-]+){3}", model_id):
        notes.append(f"model_sources empty: MODEL_ID {model_id!r} is a Kaggle model handle without a version; "
                     "add /VERSION to attach it, else the notebook downloads it (kagglehub, internet on)")
    elif not model:
        notes.append(f"model_sources empty: MODEL_ID {model_id!r} is not a Kaggle model instance version "
                     "(OWNER/MODEL/FRAMEWORK/VARIATION/VERSION); the notebook loads it itself")
    stem = output.name[: -len(".ipynb")] if output.name.endswith(".ipynb") else output.stem
    title = re.sub(r"[_\s]+", " ", stem).strip()
    if len(title) < 5:
        title = f"DSA {title}".strip()
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    tpu = RECIPES[result.family].environment == "tunix"
    code_file = os.path.relpath(output.resolve(), metadata_path.resolve().parent)
    meta = {
        "id": kernel_id or slug,
        "title": title,
        "code_file": Path(code_file).as_posix(),
        "language": "python",
        "kernel_type": "notebook",
        "is_private": not public,
        "enable_gpu": not tpu,
        "enable_tpu": tpu,
        "enable_internet": True,
        "dataset_sources": [dataset.group(1)] if dataset else [],
        "competition_sources": [],
        "kernel_sources": [],
        "model_sources": [model.group(1)] if model else [],
    }
    if not kernel_id:
        notes.append(f"id {slug!r}: a bare slug (kaggle uses the configured user); pass --kaggle-id USER/SLUG")
    return meta, notes


def run(args) -> int:
    base = Path(args.base)
    nb = read_notebook(base)
    output = resolve_output(args, base)
    if not args.check and not args.in_place:
        if output.exists() and not args.force:
            raise OutputExistsError(f"{output}: exists; pass --force to overwrite or -o another path")
        if output.exists() and output.is_dir():
            raise NotebookError(f"{output}: is a directory")
        folder = output.parent if str(output.parent) else Path(".")
        if not folder.is_dir():
            state = "is not a folder" if folder.exists() else "does not exist"
            raise NotebookError(f"{output}: folder {folder} {state}")
        if not os.access(folder, os.W_OK):
            raise NotebookError(f"{output}: folder {folder} is not writable")
    if args.kaggle_metadata and not Path(args.kaggle_metadata).resolve().parent.is_dir():
        raise NotebookError(f"{args.kaggle_metadata}: folder does not exist")
    colab_repo, colab_path = resolve_colab(args, output)
    try:
        result = adapt(nb, family=args.family, model_id=args.model_id, dataset_id=args.dataset_id,
                       notebook_path=colab_path, colab_repo=colab_repo, colab_branch=args.colab_branch,
                       base_name=base.name)
    except NotebookError as exc:
        # adapt() is pure and knows no paths: name the file here, keeping the error's type (exit code).
        raise type(exc)(f"{base}: {exc}") from None
    text = dumps_notebook(result.nb)
    if not args.quiet:
        print(format_report(result))
    if args.diff:
        sys.stdout.write(source_diff(nb, result.nb, str(base), str(output)))
    if args.report_json and not Path(args.report_json).resolve().parent.is_dir():
        raise NotebookError(f"{args.report_json}: folder does not exist")
    if args.check:
        # Against the existing output (CI: is the committed .dsa.ipynb current?), else the base itself.
        target = output if output.is_file() else base
        changed = target.read_text(encoding="utf-8") != text
    else:
        write_atomic(output, text)
        print(f"wrote {output}")
        changed = False
    if args.kaggle_metadata and not args.check:
        meta, notes = kaggle_metadata(result, output, Path(args.kaggle_metadata), args.kaggle_id, args.kaggle_public)
        write_atomic(args.kaggle_metadata, json.dumps(meta, indent=1, sort_keys=True) + "\n")
        print(f"wrote {args.kaggle_metadata}" + "".join(f"\n  note: {n}" for n in notes))
    if args.report_json:
        report = {
            "family": result.family,
            "why": result.why,
            "cells": [row.as_dict() for row in result.report],
            "counts": result.counts(),
            "secrets_found": result.secrets_found,
            "output": str(output),
            "colab_badge": result.badge,
        }
        write_atomic(args.report_json, json.dumps(report, indent=1, sort_keys=True) + "\n")
    if args.check:
        if changed:
            print(f"check: {output} would change", file=sys.stderr)
            return 1
        print(f"check: {output} is up to date")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except DSAError as exc:
        if args.debug:
            raise
        message = str(exc).replace("\n", " ")
        print(f"error: {message}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
