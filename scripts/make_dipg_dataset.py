#!/usr/bin/env python3
"""Write the offline DIPG-style dataset (synthetic, seeded, byte-identical across runs).

Two generators: v1 (adapters/synthetic_dipg.py, the default; short one-paragraph vignettes, the
data the goldens and the demo use) and v2 (adapters/synthetic/, multi-paragraph vignettes shaped like
the real rows of FIELD_NOTES §7, with a configurable type mix).

Example:
    python scripts/make_dipg_dataset.py --out data/dipg_offline.jsonl
    python scripts/make_dipg_dataset.py --out /tmp/small.jsonl --rows 200 --seed 7 --force
    python scripts/make_dipg_dataset.py --generator v2 --out /tmp/v2.jsonl --mix reasoning=0.5,refusal=0.2,haystack=0.15,anti_knowledge=0.15
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.errors import DSAError, OutputExistsError  # noqa: E402
from adapters import synthetic  # noqa: E402
from adapters.synthetic_dipg import DEFAULT_ROWS, DEFAULT_SEED, generate_rows, rows_to_jsonl, summary  # noqa: E402

GENERATORS = ("v1", "v2")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", required=True, help="output .jsonl file")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help=f"number of rows (default {DEFAULT_ROWS})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    parser.add_argument("--generator", choices=GENERATORS, default="v1",
                        help="v1: today's generator, the default (goldens and demo use it); "
                             "v2: multi-paragraph rows shaped like the real ones (FIELD_NOTES §7)")
    parser.add_argument("--mix", help="v2 only: type shares, e.g. reasoning=0.4,refusal=0.2,haystack=0.2,anti_knowledge=0.2 "
                                      "(normalised; types left out get none; default the upstream 40/20/20/20)")
    parser.add_argument("--force", action="store_true", help="replace an existing output file")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser.parse_args(argv)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temp file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        current = os.umask(0)
        os.umask(current)
        os.chmod(tmp, 0o666 & ~current)  # mkstemp makes it 0600; the output is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        out = Path(args.out)
        if args.rows < 1:
            raise DSAError(f"--rows must be at least 1, got {args.rows}")
        if out.suffix.lower() != ".jsonl":
            raise DSAError(f"{out}: --out must be a .jsonl file")
        if out.exists() and not args.force:
            raise OutputExistsError(f"{out}: already exists (use --force to replace it)")
        if args.mix is not None and args.generator != "v2":
            raise DSAError("--mix needs --generator v2 (v1 keeps the upstream 40/20/20/20 mix)")
        if args.generator == "v2":
            mix = synthetic.parse_mix(args.mix) if args.mix is not None else None
            rows = synthetic.generate_rows(args.rows, args.seed, mix=mix)
        else:
            rows = generate_rows(args.rows, args.seed)
        write_atomic(out, rows_to_jsonl(rows))
    except DSAError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    stats = summary(rows)
    print(f"wrote {stats['rows']} rows to {out} (generator {args.generator}, seed {args.seed})")
    print("per type: " + ", ".join(f"{k} {v}" for k, v in stats["per_type"].items()))
    print(f"distinct answers: {stats['distinct_answers']}, distinct contexts: {stats['distinct_contexts']}")
    for name, chars in stats["context_chars"].items():
        print(f"context chars {name}: min {chars['min']}, mean {chars['mean']}, max {chars['max']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
