"""The committed DSA notebooks (notebooks/dsa/) are exactly what the patcher makes from notebooks/base/.

Each is regenerated with ``scripts/adapt_dsa_notebook.py BASE -o notebooks/dsa/X.ipynb --colab-path ...
--check`` (what ``make notebooks`` writes) and must come back byte for byte; the jupytext pairing and
``--sync`` of the pair are checked by tests/test_notebook_pairs.py, which globs notebooks/dsa too.
A failure here is fixed by ``make notebooks`` (then review the diff).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLI = ROOT / "scripts" / "adapt_dsa_notebook.py"
# DSA notebook -> the base it is made from (notebooks/base keeps the GSM8K names: they are GSM8K notebooks).
BASES = {"trl_sft_dsa": "trl_sft_gsm8k", "unsloth_gemma3_sft_grpo_dsa": "unsloth_gemma3_sft_grpo_gsm8k",
         "tunix_gemma3_sft_grpo_dsa": "tunix_gemma3_sft_grpo_gsm8k"}
NAMES = tuple(BASES)
KERNELS = {"trl_sft_dsa": "dsa-core", "unsloth_gemma3_sft_grpo_dsa": "dsa-unsloth",
           "tunix_gemma3_sft_grpo_dsa": "dsa-tunix"}
BADGE = re.compile(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/([^/)\s]+)/")


def _committed_badge(target: Path) -> tuple[str, str]:
    """(repo, branch) of the committed notebook's badge, ("", "main") without one (make notebooks COLAB_REPO=)."""
    match = BADGE.search(target.read_text(encoding="utf-8"))
    return (match.group(1), match.group(2)) if match else ("", "main")


@pytest.mark.parametrize("name", NAMES)
def test_dsa_notebook_is_current(name):
    target = f"notebooks/dsa/{name}.ipynb"
    assert (ROOT / target).is_file() and (ROOT / target).with_suffix(".py").is_file(), f"run `make notebooks`"
    repo, branch = _committed_badge(ROOT / target)
    done = subprocess.run(
        [sys.executable, str(CLI), f"notebooks/base/{BASES[name]}.ipynb", "-o", target, "--colab-path", target,
         "--colab-repo", repo, "--colab-branch", branch, "--check", "--quiet"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert done.returncode == 0, f"{target} is stale (`make notebooks`): {done.stderr.strip()}"


@pytest.mark.parametrize("name", NAMES)
def test_dsa_notebook_badge_kernel_and_parameters(name):
    nb = json.loads((ROOT / "notebooks" / "dsa" / f"{name}.ipynb").read_text(encoding="utf-8"))
    first = "".join(nb["cells"][0]["source"])
    assert nb["cells"][0]["cell_type"] == "markdown"
    # The kit header: DSA title, provenance; a badge only for a real repository (make notebooks COLAB_REPO=...).
    assert first.startswith("# DSA: ") and "by adapt_dsa_notebook.py" in first
    text = (ROOT / "notebooks" / "dsa" / f"{name}.ipynb").read_text(encoding="utf-8")
    assert "owner/repo" not in text.lower()
    match = BADGE.search(first)
    if match:
        assert f"/blob/{match.group(2)}/notebooks/dsa/{name}.ipynb" in first
    assert nb["metadata"]["kernelspec"]["name"] == KERNELS[name]
    tagged = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1 and "MODEL_ID =" in "".join(tagged[0]["source"])
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    # Headless: nothing waits for a person (input/login calls go through the kit's helpers).
    assert "notebook_login()" not in code and "kagglehub.login()" not in code
    assert "IN_COLAB" in code and "IN_KAGGLE" in code
