#!/usr/bin/env python
"""Regenerate the patcher's golden files (tests never write them).

Example:
  python scripts/regen_golden_notebooks.py            # all fixtures
  python scripts/regen_golden_notebooks.py --check    # exit 1 if any golden is stale

For each base fixture ``tests/fixtures/notebooks/X.ipynb`` this writes
``tests/golden/notebooks/X.expected.ipynb`` (the adapted notebook, default parameters) and
``X.report.txt`` (the table the CLI prints). Review the diff before committing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.errors import DSAError  # noqa: E402
from adapters.notebook_io import dumps_notebook, read_notebook, write_atomic  # noqa: E402
from adapters.patcher import adapt, format_report  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "notebooks"
GOLDEN = ROOT / "tests" / "golden" / "notebooks"


def golden_pairs() -> list[tuple[Path, Path, Path]]:
    """[(base fixture, expected notebook, expected report)] for every base fixture, sorted."""
    return [
        (base, GOLDEN / f"{base.stem}.expected.ipynb", GOLDEN / f"{base.stem}.report.txt")
        for base in sorted(FIXTURES.glob("*.ipynb"))
    ]


def render(base: Path) -> tuple[str, str]:
    result = adapt(read_notebook(base))
    return dumps_notebook(result.nb), format_report(result) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a golden file is stale")
    args = parser.parse_args(argv)
    GOLDEN.mkdir(parents=True, exist_ok=True)
    stale = 0
    try:
        for base, expected, report in golden_pairs():
            notebook_text, report_text = render(base)
            for path, text in ((expected, notebook_text), (report, report_text)):
                current = path.read_text(encoding="utf-8") if path.exists() else None
                if current == text:
                    continue
                stale += 1
                if args.check:
                    print(f"stale: {path.relative_to(ROOT)}")
                else:
                    write_atomic(path, text)
                    print(f"wrote {path.relative_to(ROOT)}")
    except DSAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.check and stale:
        return 1
    print(f"{len(golden_pairs())} fixtures, {stale} file(s) {'stale' if args.check else 'updated'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
