#!/usr/bin/env python
"""Wall time and peak memory of each DSA notebook's papermill run on the tiny model (a benchmark, not a test).

Each family runs exactly what tests/test_notebooks_e2e.py runs (adapters/notebook_runs.py: same knobs,
fresh run folder as working directory, family kernel). Peak memory is the largest summed RSS of papermill
and its kernel, polled every 0.2 s with psutil. Families whose venv/kernel is absent, or that are not
executable yet (``Family.not_run``), are listed with the reason instead of a time.

Example:
    .venv/bin/python benchmarks/bench_notebooks.py --markdown benchmarks/results/notebooks.md
    .venv/bin/python benchmarks/bench_notebooks.py --family trl --keep runs/bench
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.notebook_runs import FAMILIES, KNOBS, missing_requirements, run_notebook  # noqa: E402


def _venv_versions(venv: str, packages: tuple[str, ...]) -> str:
    """``pkg==version`` of ``packages`` inside ``venv`` (what the kernel imports), comma-separated."""
    code = ("import importlib.metadata as m\nfor p in %r:\n    try: print(p + '==' + m.version(p))\n"
            "    except m.PackageNotFoundError: pass") % (packages,)
    python = ROOT / venv / "bin" / "python"
    if not python.exists():
        return "(venv absent)"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return ", ".join(done.stdout.split())


def cell_times(executed: Path) -> list[tuple[float, str]]:
    """``[(seconds, label), ...]`` of each executed code cell (papermill's per-cell duration), slowest first.

    The label is the kit cell's name for a cell the patcher inserted, else the cell's first code line.
    """
    if not executed.is_file():
        return []
    cells = json.loads(executed.read_text(encoding="utf-8"))["cells"]
    out = []
    for cell in cells:
        duration = (cell.get("metadata", {}).get("papermill", {}) or {}).get("duration")
        if cell["cell_type"] != "code" or duration is None:
            continue
        kit = cell["metadata"].get("dsa_kit", {}).get("cell")
        source = "".join(cell["source"])
        first = next((line.strip() for line in source.split("\n")
                      if line.strip() and not line.lstrip().startswith("#")), "")
        label = f"kit `{kit}`" if kit else f"`{first[:60].replace('|', '/')}`"
        out.append((float(duration), label))
    return sorted(out, key=lambda item: -item[0])


PACKAGES = {"trl": ("torch", "transformers", "trl", "peft"),
            "unsloth": ("torch", "unsloth", "transformers", "trl"),
            "tunix": ("google-tunix", "jax", "flax", "transformers")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", action="append", choices=sorted(FAMILIES), help="default: all")
    parser.add_argument("--markdown", metavar="FILE", help="also write the results table as Markdown")
    parser.add_argument("--keep", metavar="DIR", help="keep run folders under DIR (default: a temp folder)")
    args = parser.parse_args(argv)
    names = args.family or sorted(FAMILIES)
    base = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="dsa_bench_nb_"))
    rows = []
    profiles: dict[str, tuple[float, list]] = {}
    for name in names:
        family = FAMILIES[name]
        why = missing_requirements(family) or family.not_run
        if why:
            rows.append((name, family.kernel, None, None, None, f"not run: {why}"))
            print(f"{name}: not run: {why}", flush=True)
            continue
        run = run_notebook(family, base / name)
        status = "ok" if run["returncode"] == 0 else f"FAILED (exit {run['returncode']}; {base / name}/papermill.stderr)"
        losses = ""
        log = run["out_dir"] / "train_log.json"
        if log.is_file():
            losses = "losses " + " -> ".join(f"{x:.4f}" for x in json.loads(log.read_text())["losses"])
        rows.append((name, family.kernel, run["wall_s"], run.get("cpu_s"), run["peak_rss_mb"],
                     f"{status}; {losses}".strip("; ")))
        profiles[name] = (run["wall_s"], cell_times(run["executed"]))
        print(f"{name}: {run['wall_s']:.1f} s, CPU {run.get('cpu_s') or 0:.1f} s, peak {run['peak_rss_mb']:.0f} MiB, "
              f"{status}", flush=True)
    command = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/bench_notebooks.py", *(argv or sys.argv[1:])])
    lines = [
        "# DSA notebooks: papermill wall time and peak memory (tiny model)",
        "",
        f"Command: `{command}` (from the repository root, core venv).",
        "",
        f"Knobs (papermill -p): {', '.join(f'{k}={v}' for k, v in KNOBS.items())}; "
        "MODEL_ID=models/tiny-gemma3, DATASET_ID=data/dipg.",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"papermill {importlib.metadata.version('papermill')}; load average at the end "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())} (other jobs share these CPUs).",
        "",
        "| family | kernel | wall time (s) | CPU time, papermill + kernel (s) | peak RSS, papermill + kernel (MiB) "
        "| result | versions |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for name, kernel, wall, cpu, peak, note in rows:
        wall_s = f"{wall:.1f}" if wall is not None else "-"
        cpu_s = f"{cpu:.1f}" if cpu is not None else "-"
        peak_s = f"{peak:.0f}" if peak is not None else "-"
        lines.append(f"| {name} | `{kernel}` | {wall_s} | {cpu_s} | {peak_s} | {note} | "
                     f"{_venv_versions(FAMILIES[name].venv, PACKAGES[name])} |")
    lines += ["", "Wall time includes kernel start, imports, model load, training, generation and scoring. CPU time "
              "is the user + system seconds of papermill and its kernel: other jobs on the machine stretch the wall "
              "time, much less the CPU time; on an idle 2-core machine the wall time is about the CPU time over the "
              "cores a run keeps busy (1 to 2).", ""]
    for name, (wall, times) in profiles.items():
        in_cells = sum(t for t, _ in times)
        top = ", ".join(f"{label} {t:.1f} s" for t, label in times[:6])
        lines += [f"Where {name}'s {wall:.1f} s go (papermill's per-cell durations): {len(times)} code cells "
                  f"{in_cells:.1f} s, outside the cells (papermill start, kernel start, notebook I/O) "
                  f"{wall - in_cells:.1f} s; slowest cells: {top}.", ""]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(args.markdown).with_suffix(".md.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, args.markdown)
    return 0 if all(r[2] is None or "FAILED" not in r[5] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
