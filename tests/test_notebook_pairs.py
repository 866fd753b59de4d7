"""Every jupytext pair under notebooks/ is in sync, and every .ipynb names a kernel.

`jupytext --sync` is run on a copy of each pair (in a temporary folder, with the folder's
jupytext.toml beside it, so the same settings apply); the pair must come back byte for byte.
A pair that fails here is re-synced with `make notebooks-sync` (see notebooks/README.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
KNOWN_KERNELS = {"dsa-core", "dsa-unsloth", "dsa-tunix"}
# The base notebooks the patcher reads; they must exist (the DSA ones are found by globbing).
BASE = ("trl_sft_gsm8k", "unsloth_gemma3_sft_grpo_gsm8k", "tunix_gemma3_sft_grpo_gsm8k")


def _jupytext() -> str:
    exe = Path(sys.executable).with_name("jupytext")
    if exe.exists():
        return str(exe)
    found = shutil.which("jupytext")
    if found is None:
        pytest.skip("jupytext is not installed in this environment")
    return found


def _pairs() -> list[Path]:
    """All .ipynb under notebooks/ (skipping checkpoints), sorted for stable test ids."""
    return sorted(p for p in NOTEBOOKS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def _pair_id(path: Path) -> str:
    return str(path.relative_to(NOTEBOOKS))


def test_base_notebooks_exist():
    for name in BASE:
        for ext in (".py", ".ipynb"):
            assert (NOTEBOOKS / "base" / f"{name}{ext}").is_file(), f"missing notebooks/base/{name}{ext}"


@pytest.mark.parametrize("ipynb", _pairs(), ids=_pair_id)
def test_pair_is_declared_and_has_kernelspec(ipynb: Path):
    nb = json.loads(ipynb.read_text(encoding="utf-8"))
    meta = nb["metadata"]
    assert meta.get("jupytext", {}).get("formats") == "ipynb,py:percent", "not paired as ipynb,py:percent"
    assert ipynb.with_suffix(".py").is_file(), "paired .py is missing"
    spec = meta.get("kernelspec", {})
    # papermill refuses a notebook without a kernel name (FIELD_NOTES §5).
    assert spec.get("name") in KNOWN_KERNELS, f"kernelspec name {spec.get('name')!r}"
    assert spec.get("language") == "python" and spec.get("display_name")
    # Colab reads its own metadata from the .ipynb only (the .py does not carry it).
    assert "colab" in meta, "Colab metadata missing"


@pytest.mark.parametrize("newer", ["ipynb", "py"])
@pytest.mark.parametrize("ipynb", _pairs(), ids=_pair_id)
def test_sync_leaves_pair_unchanged(ipynb: Path, newer: str, tmp_path: Path):
    py = ipynb.with_suffix(".py")
    before = {p.name: p.read_bytes() for p in (ipynb, py)}
    config = ipynb.parent / "jupytext.toml"
    if config.exists():
        shutil.copy2(config, tmp_path / config.name)
    for p in (ipynb, py):
        shutil.copy2(p, tmp_path / p.name)
    # --sync takes its inputs from the newer file, and a git clone sets mtimes in no set order:
    # check both directions.
    source = tmp_path / (ipynb.name if newer == "ipynb" else py.name)
    other = tmp_path / (py.name if newer == "ipynb" else ipynb.name)
    os.utime(other, (1_000_000_000, 1_000_000_000))
    os.utime(source, (1_000_000_100, 1_000_000_100))
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    run = subprocess.run(
        [_jupytext(), "--sync", str(tmp_path / ipynb.name)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    after = {name: (tmp_path / name).read_bytes() for name in before}
    for name in before:
        assert after[name] == before[name], f"jupytext --sync changed {name}; run `make notebooks-sync`"


@pytest.mark.parametrize("ipynb", _pairs(), ids=_pair_id)
def test_py_side_matches_notebook_cells(ipynb: Path):
    """The .py read back by jupytext has the same cell sources as the .ipynb (no drift in either)."""
    jupytext = pytest.importorskip("jupytext")
    nb_from_py = jupytext.read(ipynb.with_suffix(".py"))
    nb = jupytext.read(ipynb)
    assert [(c.cell_type, c.source) for c in nb_from_py.cells] == [(c.cell_type, c.source) for c in nb.cells]
