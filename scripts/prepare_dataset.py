#!/usr/bin/env python3
"""Validate a DIPG dataset, split it the upstream way and write a DatasetDict plus JSONL copies.

SOURCE is a hub id (owner/name), a .jsonl/.json/.parquet file, a folder written by save_to_disk,
or a folder with train/test files. A source with train/test splits keeps them; one collection of
N rows is shuffled with random.seed(42) and split into the first N-100 (train) and last 100 (test),
which for the upstream 1500 rows is exactly [:1400] / [1400:1500].

Example:
    python scripts/prepare_dataset.py data/dipg_offline.jsonl --out data/dipg
    python scripts/prepare_dataset.py rows.jsonl --out data/dipg --skip-invalid --force
    HF_TOKEN=... python scripts/prepare_dataset.py data/dipg_offline.jsonl --out data/dipg --push-to-hub me/dipg

Exit codes: 0 done; 2 bad input (each invalid row is listed as "error: row N: reason"),
existing --out without --force, or a failed push.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.dataset import (  # noqa: E402
    invalid_rows,
    push_preflight,
    push_to_hub,
    read_source,
    save_splits,
    split_label,
    to_dataset_dict,
    upstream_split,
)
from adapters.errors import DSAError, DatasetError, OutputExistsError  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    head, rest = __doc__.split("\n\n", 1)
    parser = argparse.ArgumentParser(description=head, epilog=rest, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="hub id, .jsonl/.json/.parquet file, or saved dataset folder")
    parser.add_argument("--out", required=True, help="output folder (DatasetDict + train.jsonl + test.jsonl)")
    parser.add_argument("--skip-invalid", action="store_true", help="drop invalid rows, print counts per reason")
    parser.add_argument("--push-to-hub", metavar="REPO", help="also push to this hub dataset (token from HF_TOKEN)")
    parser.add_argument("--force", action="store_true", help="replace an existing --out folder")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    # Refuse before reading anything: a long validation should not end in "already exists".
    if out.exists() and not args.force:
        raise OutputExistsError(f"{out}: already exists (use --force to replace it)")
    if args.push_to_hub:
        push_preflight(args.push_to_hub)  # no token or offline: say so before doing any work
    splits = read_source(args.source)
    bad = invalid_rows(splits)
    if bad and not args.skip_invalid:
        for split, index, issues in bad:
            print(f"error: {split_label(split, index)}: {'; '.join(i.message for i in issues)} ({args.source})",
                  file=sys.stderr)
        total = sum(len(rows) for rows in splits.values())
        print(f"error: {args.source}: {len(bad)} of {total} rows invalid (use --skip-invalid to drop them)",
              file=sys.stderr)
        return 2
    if bad:
        reasons = Counter(issue.kind for _, _, issues in bad for issue in issues)
        print(f"skipped {len(bad)} invalid row(s); reasons:")
        for kind, count in sorted(reasons.items(), key=lambda item: (-item[1], item[0])):
            print(f"  {kind}: {count}")
        dropped = {(split, index) for split, index, _ in bad}
        splits = {name: [row for i, row in enumerate(rows) if (name, i) not in dropped] for name, rows in splits.items()}
    if "all" in splits:
        train, test = upstream_split(splits["all"])
        how = "upstream split (random.seed(42) shuffle; last 100 rows test)"
    else:
        train, test = splits["train"], splits["test"]
        if not train or not test:
            raise DatasetError(f"{args.source}: train or test split is empty after validation")
        how = "source splits kept"
    import datasets  # imported late: a rejected input is reported without paying for this import

    datasets.disable_progress_bars()  # the summary is the output; bars would clutter logs
    dd = to_dataset_dict(train, test)
    save_splits(dd, out, force=args.force)
    print(f"wrote {out} ({how})")
    for name in dd:
        types = Counter(dd[name]["metadata"][i]["type"] for i in range(len(dd[name])))
        detail = ", ".join(f"{t} {c}" for t, c in sorted(types.items()))
        print(f"  {name}: {len(dd[name])} rows ({detail})")
    if args.push_to_hub:
        push_to_hub(dd, args.push_to_hub)
        print(f"pushed to hub dataset {args.push_to_hub}")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except DSAError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
