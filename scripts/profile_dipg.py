#!/usr/bin/env python3
"""Print the length/structure profile of DIPG datasets side by side (FIELD_NOTES §7's measures).

Each DATA is any source adapters/dataset.py reads (.jsonl/.json/.parquet file, saved or train/test
folder); all its rows are profiled. --real adds FIELD_NOTES §7's figures of the real rows as a column.

Example:
    python scripts/profile_dipg.py data/dipg_offline.jsonl
    python scripts/profile_dipg.py v1=data/dipg_offline.jsonl v2=/tmp/v2.jsonl --real --markdown /tmp/profile.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.dataset import load_rows  # noqa: E402
from adapters.dipg_profile import REAL, markdown_table, profile  # noqa: E402
from adapters.errors import DSAError  # noqa: E402
from adapters.notebook_io import write_atomic  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("data", nargs="+", metavar="[NAME=]DATA", help="dataset source, optionally named (v2=rows.jsonl)")
    parser.add_argument("--real", action="store_true", help="add FIELD_NOTES §7's real-row figures as a column")
    parser.add_argument("--markdown", help="also write the table to this Markdown file (atomically)")
    parser.add_argument("--json", action="store_true", help="print the profiles as JSON instead of the table")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser.parse_args(argv)


def _named(spec: str) -> tuple[str, str]:
    """``"v2=rows.jsonl"`` -> ``("v2", "rows.jsonl")``; a bare path is named by itself."""
    name, sep, path = spec.partition("=")
    if sep and name and not Path(spec).exists():
        return name, path
    return spec, spec


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        columns: dict[str, dict] = {}
        for spec in args.data:
            name, source = _named(spec)
            if name in columns:
                raise DSAError(f"{name}: named twice")
            rows = load_rows(source)
            if not all(isinstance(row, dict) and isinstance(row.get("messages"), list) and len(row["messages"]) >= 2
                       for row in rows):
                raise DSAError(f"{source}: rows need a 'messages' list of a user and an assistant turn")
            columns[name] = profile(rows)
        if args.real:
            columns["real rows (FIELD_NOTES §7)"] = REAL
        table = markdown_table(columns)
        if args.markdown:
            write_atomic(args.markdown, table)
    except DSAError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.json:
        print(json.dumps({k: v for k, v in columns.items() if v is not REAL}, indent=2, sort_keys=True))
    else:
        print(table, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
