"""Issue 12: adapted notebooks read as DSA notebooks (no GSM8K wording in markdown), the Colab badge points at a
real repository or is absent, and --kaggle-metadata writes what `kaggle kernels push` accepts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from adapters.errors import NotebookError
from adapters.markdown_rewrite import markdown_problems, rewrite_markdown
from adapters.notebook_io import read_notebook
from adapters.notebook_runs import real_notebooks_dir
from adapters.patcher import adapt, check_output

ROOT = Path(__file__).resolve().parents[1]
CLI = ROOT / "scripts" / "adapt_dsa_notebook.py"
# The same locator test_real_notebooks.py uses: $DSA_BASE_NOTEBOOKS, else shared/base_notebooks beside or above
# the clone (a clone one folder deeper than ../shared found it there and not here: a CI failure in a clone's
# location, not in the kit).
REAL = real_notebooks_dir()
INPUTS = sorted((ROOT / "notebooks" / "base").glob("*.ipynb")) + sorted(
    (ROOT / "tests" / "fixtures" / "notebooks").glob("*.ipynb")) + (sorted(REAL.glob("*.ipynb")) if REAL else [])


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name)
def test_no_gsm8k_wording_left_in_markdown(path):
    result = adapt(read_notebook(path))
    assert markdown_problems(result.nb) == []
    header = result.nb.cells[0].source
    assert header.startswith("# DSA: ") and "by adapt_dsa_notebook.py" in header
    assert "colab.research.google.com/github" not in header and result.badge is None


def test_real_notebooks_present_where_ci_runs():
    if os.environ.get("DSA_CI") == "1" or REAL is not None:
        assert REAL is not None and len([p for p in INPUTS if p.parent == REAL]) == 8


def test_markdown_check_fails_on_gsm8k_prose():
    nb = adapt(read_notebook(ROOT / "notebooks" / "base" / "trl_sft_gsm8k.ipynb")).nb
    nb.cells.append(nbformat.v4.new_markdown_cell("GSM8K answers end with `#### <number>`."))
    nb.cells[-1]["id"] = "extra"
    with pytest.raises(NotebookError, match="GSM8K"):
        check_output(nb)


def test_rewrite_keeps_unrelated_markdown_and_heading_hashes():
    text = "#### Licence\n\nApache-2.0, see [here](https://example.com)."
    assert rewrite_markdown(text) == (text, [])
    new, reasons = rewrite_markdown("### Data Prep\nWe use OpenAI's famous GSM8K dataset!")
    assert new.startswith("### Data Prep\n\nData: the DIPG") and reasons
    assert rewrite_markdown("We notice all answers have a ####, so we extract it:", explains_dropped=True)[0] is None


def _cli(*argv, cwd=ROOT):
    return subprocess.run([sys.executable, str(CLI), *argv], cwd=cwd, capture_output=True, text=True)


def test_badge_from_option_and_never_a_placeholder(tmp_path):
    out = tmp_path / "x.ipynb"
    base = str(ROOT / "notebooks" / "base" / "trl_sft_gsm8k.ipynb")
    done = _cli(base, "-o", str(out), "--colab-repo", "me/kit", "--colab-path", "nb/x.ipynb", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "https://colab.research.google.com/github/me/kit/blob/main/nb/x.ipynb)" in out.read_text()
    done = _cli(base, "-o", str(out), "--colab-repo", "OWNER/REPO", "--colab-path", "nb/x.ipynb", "--force")
    assert done.returncode == 2 and "OWNER/REPO" in done.stderr


def test_badge_from_git_origin(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin", "git@github.com:someone/dsa-kit.git"],
                   check=True)
    (tmp_path / "nb").mkdir()
    out = tmp_path / "nb" / "x.ipynb"
    done = _cli(str(ROOT / "notebooks" / "base" / "trl_sft_gsm8k.ipynb"), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "colab badge: https://colab.research.google.com/github/someone/dsa-kit/blob/main/nb/x.ipynb" in done.stdout
    done = _cli(str(ROOT / "notebooks" / "base" / "trl_sft_gsm8k.ipynb"), "-o", str(out), "--force",
                "--colab-repo", "")
    assert "colab badge: left out" in done.stdout and "colab.research.google.com/github" not in out.read_text()


@pytest.mark.parametrize("base, accel", [("trl_sft_gsm8k", "enable_gpu"), ("tunix_gemma3_sft_grpo_gsm8k", "enable_tpu")])
def test_kaggle_metadata_passes_kaggles_own_push_validation(tmp_path, base, accel, monkeypatch):
    import kaggle  # noqa: F401  (package first: importing the submodule alone is circular; auth errors are swallowed)
    from kaggle.api import kaggle_api_extended as kaggle_api
    out, meta_path = tmp_path / "dsa_x.ipynb", tmp_path / "kernel-metadata.json"
    done = _cli(str(ROOT / "notebooks" / "base" / f"{base}.ipynb"), "-o", str(out), "--quiet",
                "--kaggle-metadata", str(meta_path), "--kaggle-id", "someone/dsa-x",
                "--dataset-id", "kaggle:someone/dipg-safety")
    assert done.returncode == 0, done.stderr
    meta = json.loads(meta_path.read_text())
    assert meta["code_file"] == "dsa_x.ipynb" and meta[accel] is True and meta["enable_internet"] is True
    assert meta["dataset_sources"] == ["someone/dipg-safety"] and meta["model_sources"] == []
    assert meta["enable_gpu"] != meta["enable_tpu"]

    class Reached(Exception):
        pass

    def no_network(self):  # kernels_push validates every field before it builds the client
        raise Reached

    monkeypatch.setattr(kaggle_api.KaggleApi, "build_kaggle_client", no_network)
    with pytest.raises(Reached):
        kaggle_api.KaggleApi().kernels_push(str(tmp_path))
    # The same validation refuses a broken file (the check can fail).
    meta_path.write_text(json.dumps({**meta, "kernel_type": "nb"}))
    with pytest.raises(ValueError, match="kernel type"):
        kaggle_api.KaggleApi().kernels_push(str(tmp_path))
