#!/usr/bin/env python
"""Figures for the DSA core cell decision: the inlined cell's size vs installing the kit as a wheel.

* the core cell (``adapters.cells.build_core_source``): characters and lines, and its share of each DSA
  notebook's code (``notebooks/dsa/*.ipynb``);
* the wheel (``make wheel``: ``pip wheel . --no-deps --no-build-isolation``, here from a copy of
  ``pyproject.toml`` + ``adapters/`` so the checkout is not written): build seconds and size;
* ``pip install --no-deps --no-index`` of that wheel into a throwaway venv
  (``python -m venv --system-site-packages``; venv creation timed apart), and ``pip install --no-deps
  --no-build-isolation`` of the source folder (build + install);
* the cost in a fresh interpreter of ``import``-ing the core modules from the installed wheel vs
  executing the inlined cell (median of ``--repeats``).

Example:
    python benchmarks/bench_core_cell.py --markdown benchmarks/results/core_cell.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters import cells  # noqa: E402
from adapters.patcher import KIT_KEY  # noqa: E402


def _timed(cmd: list[str], **kwargs) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True, **kwargs)
    return time.perf_counter() - start


def notebook_shares() -> list[dict]:
    """Per DSA notebook: code characters, the core cell's characters and lines."""
    out = []
    for path in sorted((ROOT / "notebooks" / "dsa").glob("*.ipynb")):
        data = json.loads(path.read_text(encoding="utf-8"))
        code = [c for c in data["cells"] if c["cell_type"] == "code"]
        core = ["".join(c["source"]) for c in code if c.get("metadata", {}).get(KIT_KEY, {}).get("cell") == cells.CORE_CELL]
        total = sum(len("".join(c["source"])) for c in code)
        out.append({"notebook": path.name, "code_cells": len(code), "code_chars": total,
                    "core_chars": sum(map(len, core)), "core_lines": sum(s.count("\n") + 1 for s in core)})
    return out


def wheel_figures(work: Path, repeats: int) -> dict:
    src = work / "src"
    src.mkdir()
    shutil.copy(ROOT / "pyproject.toml", src)
    shutil.copytree(ROOT / "adapters", src / "adapters", ignore=shutil.ignore_patterns("__pycache__"))
    dist = work / "dist"
    build_s = _timed([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q",
                      "-w", str(dist)])
    wheel = next(dist.glob("dsa_notebook_kit-*.whl"))
    venv = work / "venv"
    venv_s = _timed([sys.executable, "-m", "venv", "--system-site-packages", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    install_s = _timed(pip + ["install", "--no-deps", "--no-index", "-q", str(wheel)])
    _timed(pip + ["uninstall", "-y", "-q", "dsa-notebook-kit"])
    # setuptools of the core venv builds the source folder (no download: --no-build-isolation needs it
    # importable in the throwaway venv, so the core venv's site-packages are put on its path for the build).
    site = next((ROOT / ".venv" / "lib").glob("python*/site-packages"))
    source_install_s = _timed(pip + ["install", "--no-deps", "--no-build-isolation", "--no-index", "-q", str(src)],
                              env={**os.environ, "PYTHONPATH": str(site)})
    shutil.rmtree(src / "build", ignore_errors=True)
    # Import cost vs executing the inlined cell, each in a fresh interpreter of the core venv.
    core_file = work / "core_cell.py"
    core_file.write_text(cells.build_core_source(), encoding="utf-8")
    site_wheel = work / "site"
    _timed([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(site_wheel),
            str(wheel)])
    imports = ", ".join(f"adapters.{m}" for m in cells.CORE_MODULES)
    probe_import = f"import sys, time; sys.path.insert(0, {str(site_wheel)!r}); t=time.perf_counter(); import {imports}; print(time.perf_counter()-t)"
    probe_exec = (f"import time; src=open({str(core_file)!r}).read(); t=time.perf_counter(); "
                  "exec(compile(src, '<dsa_core>', 'exec'), {'__name__': '__main__'}); print(time.perf_counter()-t)")

    def median_of(probe: str) -> float:
        runs = [float(subprocess.run([sys.executable, "-I", "-c", probe], check=True, capture_output=True, text=True,
                                     cwd=work).stdout) for _ in range(repeats)]
        return statistics.median(runs)

    return {"wheel": wheel.name, "wheel_bytes": wheel.stat().st_size, "build_s": build_s, "venv_s": venv_s,
            "install_s": install_s, "source_install_s": source_install_s,
            "import_s": median_of(probe_import), "exec_s": median_of(probe_exec)}


def markdown(shares: list[dict], wheel: dict, command: str) -> str:
    core = cells.build_core_source()
    lines = [
        "# The DSA core cell: inlined vs installed (figures for the decision)",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs; Python {platform.python_version()}; "
        f"load average at the end {os.getloadavg()[0]:.2f} (other jobs share these CPUs).",
        "",
        f"Core cell (`adapters.cells.build_core_source()`, modules {', '.join(cells.CORE_MODULES)}): "
        f"**{len(core):,} characters, {core.count(chr(10)) + 1:,} lines**; first line `{core.splitlines()[0]}` "
        "(Colab shows the cell collapsed to that title).",
        "",
        "| DSA notebook | code cells | code characters | core cell characters | core cell lines | core share |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for s in shares:
        lines.append(f"| {s['notebook']} | {s['code_cells']} | {s['code_chars']:,} | {s['core_chars']:,} | "
                     f"{s['core_lines']:,} | {100 * s['core_chars'] / s['code_chars']:.0f} % |")
    lines += [
        "",
        "| installable kit (`make wheel`) | figure |",
        "|---|---:|",
        f"| wheel `{wheel['wheel']}` size | {wheel['wheel_bytes'] / 1024:.0f} KiB |",
        f"| `pip wheel . --no-deps --no-build-isolation` (build) | {wheel['build_s']:.1f} s |",
        f"| `python -m venv --system-site-packages` (throwaway venv, not part of an install) | {wheel['venv_s']:.1f} s |",
        f"| `pip install --no-deps --no-index <wheel>` | {wheel['install_s']:.1f} s |",
        f"| `pip install --no-deps --no-build-isolation <source folder>` (build + install) | "
        f"{wheel['source_install_s']:.1f} s |",
        f"| `import` of the core modules from the installed wheel (fresh interpreter, median) | "
        f"{wheel['import_s'] * 1000:.0f} ms |",
        f"| executing the inlined core cell (fresh interpreter, median) | {wheel['exec_s'] * 1000:.0f} ms |",
        "",
        "## Decision: the notebooks keep the inlined cell, collapsed in Colab; the wheel is for code outside them",
        "",
        f"- Size: the cell is {len(core):,} characters, {100 * min(s['core_chars'] / s['code_chars'] for s in shares):.0f}–"
        f"{100 * max(s['core_chars'] / s['code_chars'] for s in shares):.0f} % of a DSA notebook's code, but Colab now shows "
        "it as one title line (`# @title … {display-mode: \"form\"}`); in Jupyter it is a comment. Running it costs "
        f"{wheel['exec_s'] * 1000:.0f} ms against {wheel['import_s'] * 1000:.0f} ms to import the same modules from a wheel.",
        f"- Installing instead would save nothing a reader sees and add a network step: the wheel installs in "
        f"{wheel['install_s']:.1f} s here, but a notebook on Colab or Kaggle has no wheel; it would need "
        "`pip install git+https://github.com/OWNER/REPO@REF` (network, the repository's address, which exists only "
        "with `--colab-repo`, and a ref). Offline (CI, a Kaggle kernel without internet) the inlined cell would still "
        "be needed as the fallback, so the notebook would carry both.",
        "- Determinism: the inlined cell is the kit version that wrote the notebook (tests/test_dsa_notebooks.py "
        "compares it byte for byte); an installed kit of another version would silently change the masking, the "
        "parser and the scorer under the same notebook. A pinned ref would have to be known before the commit that "
        "holds the notebook.",
        "- Name contract: `adapters/dataflow.py` checks, with `ast`, that every name a kept cell reads is defined "
        "earlier; the inlined cell defines its names in the notebook, while `from adapters... import *` would hide "
        "them from that check.",
        "- So: (1) the collapsed title on the inlined cell, and (2) `make wheel` / `pip install .` for scripts and "
        "other code that wants the kit as a package (tests/test_packaging.py builds the wheel and imports it in a "
        "clean interpreter without the checkout).",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="fresh interpreters per import/exec figure (5)")
    parser.add_argument("--markdown", help="write the tables to this Markdown file (atomically)")
    args = parser.parse_args(argv)
    command = "python benchmarks/bench_core_cell.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="dsa_core_cell_") as work:
        wheel = wheel_figures(Path(work), args.repeats)
    text = markdown(notebook_shares(), wheel, command)
    print(text)
    if args.markdown:
        path = Path(args.markdown)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
            handle.write(text)
        os.replace(handle.name, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
