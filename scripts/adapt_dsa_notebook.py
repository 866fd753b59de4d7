#!/usr/bin/env python
"""Turn a public GSM8K fine-tuning notebook into a DIPG dual-stream notebook.

Example:
  python scripts/adapt_dsa_notebook.py base.ipynb                      # writes base.dsa.ipynb
  python scripts/adapt_dsa_notebook.py base.ipynb -o out.ipynb --model-id models/gemma-3-270m \\
      --dataset-id data/dipg --report-json report.json
  python scripts/adapt_dsa_notebook.py out.ipynb --check              # exit 1 if it would change

Exit codes: 0 done, 1 --check found a difference, 2 bad input or usage, 3 unknown notebook family.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.errors import DSAError, NotebookError, OutputExistsError  # noqa: E402
from adapters.notebook_io import dumps_notebook, read_notebook, write_atomic  # noqa: E402
from adapters.patcher import adapt, format_report  # noqa: E402
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
                        "(e.g. notebooks/dsa/x.ipynb; default: kept from an adapted input, else a placeholder)")
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
    try:
        result = adapt(nb, family=args.family, model_id=args.model_id, dataset_id=args.dataset_id,
                       notebook_path=args.colab_path)
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
    if args.report_json:
        report = {
            "family": result.family,
            "why": result.why,
            "cells": [row.as_dict() for row in result.report],
            "counts": result.counts(),
            "secrets_found": result.secrets_found,
            "output": str(output),
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
