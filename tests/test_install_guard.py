"""Prepared environments are never changed by a notebook; Colab-only syntax is made Jupyter-safe (issue 10).

``dsa_pip_install`` (adapters/cells/headless.py) decides per requirement; the common repairs
(adapters/recipes/common.py) turn every install line, ``%%capture`` and Colab form line into safe code.
subprocess.run is replaced by a recorder: nothing is installed by these tests.
"""

from __future__ import annotations

import subprocess

import pytest

from adapters.recipes.common import COMMON_REPAIRS
from tests.test_cells import run_cell


@pytest.fixture
def headless(monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, check=False, **kw: calls.append(cmd))
    for name in ("COLAB_RELEASE_TAG", "KAGGLE_KERNEL_RUN_TYPE", "DSA_SKIP_INSTALL", "TPU_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU, whatever this machine has
    ns = run_cell("headless", {})
    return ns, calls


def test_prepared_environment_installs_nothing_that_imports_or_needs_hardware(headless):
    ns, calls = headless
    assert ns["DSA_HAS_CUDA"] is False and ns["DSA_HAS_BF16"] is False
    for args in ('-q "jax[tpu]" -f https://storage.googleapis.com/jax-releases/libtpu_releases.html',
                 "vllm", "--upgrade -qqq uv", "transformers==4.56.2", "-q git+https://github.com/huggingface/trl",
                 '-Uq "pytest" bitsandbytes liger-kernel xformers flash-attn', "torch==2.0.0 torchvision",
                 "-q 'numpy>2'"):
        ns["dsa_pip_install"](args)
    ns["dsa_pip_install"]("-q flax -y", action="uninstall")
    ns["dsa_pip_install"]("-r requirements.txt")
    assert calls == []


def test_missing_light_package_is_installed_with_torch_pinned(headless):
    ns, calls = headless
    ns["dsa_pip_install"]("-q surely-not-installed-xyz vllm")
    (cmd,) = calls
    assert cmd[-1] == "surely-not-installed-xyz" and "vllm" not in cmd and "-c" in cmd
    constraints = open(cmd[cmd.index("-c") + 1]).read()
    assert "torch==" in constraints


def test_skip_install_lists_and_installs_nothing(headless, monkeypatch, capsys):
    monkeypatch.setenv("DSA_SKIP_INSTALL", "1")
    ns = run_cell("headless", {})
    ns["dsa_pip_install"]("surely-not-installed-xyz")
    assert headless[1] == []
    assert "not installing surely-not-installed-xyz" in capsys.readouterr().out


def test_on_colab_the_base_command_runs_as_written(monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, check=False, **kw: calls.append((cmd, check)))
    monkeypatch.setenv("COLAB_RELEASE_TAG", "x")
    monkeypatch.delenv("DSA_SKIP_INSTALL", raising=False)
    ns = run_cell("headless", {})
    ns["dsa_pip_install"]("-qqq --upgrade vllm==0.11.2 numpy", tool="uv")
    assert calls == [(["uv", "pip", "install", "-qqq", "--upgrade", "vllm==0.11.2", "numpy"], True)]


def _repair(source: str) -> tuple[str, list[str]]:
    names = []
    for repair in COMMON_REPAIRS:
        if repair.applies(source, source):
            source = repair.apply(source, source)
            names.append(repair.name)
    return source, names


def test_title_above_capture_and_install_lines():
    source = ('#@title Colab Extra Install { display-mode: "form" }\n%%capture\nimport os\n'
              "!pip install --upgrade -qqq uv\nif x:\n    !uv pip install -qqq --upgrade {_vllm} {_numpy} torchvision\n"
              '%pip install -q "{_torchao}"\n!python -m pip uninstall -y flax')
    fixed, names = _repair(source)
    assert names == ["pip_install", "cell_magic"]
    assert "%%capture" not in fixed and fixed.startswith("#@title")
    assert "    dsa_pip_install(f'-qqq --upgrade {_vllm} {_numpy} torchvision', tool=\"uv\")" in fixed
    assert "dsa_pip_install(f'-q \"{_torchao}\"')" in fixed
    assert "dsa_pip_install('-y flax', action=\"uninstall\")" in fixed
    compile(fixed, "<cell>", "exec")
    assert _repair(fixed) == (fixed, [])  # a second run finds nothing


def test_other_cell_magic_moves_to_the_first_line():
    fixed, names = _repair("# @title Write it\n%%writefile x.txt\nhello")
    assert names == ["cell_magic"] and fixed.startswith("%%writefile x.txt\n# @title")


def test_colab_secrets_and_imports_made_safe():
    fixed, names = _repair("from google.colab import userdata\ntoken = userdata.get('HF_TOKEN')")
    assert names == ["host_imports"]
    assert "dsa_secret('HF_TOKEN')" in fixed and "except ImportError" in fixed
    compile(fixed, "<cell>", "exec")
    guarded = "try:\n  from google.colab import files\nexcept ImportError:\n  files = None"
    assert _repair(guarded) == (guarded, [])


def test_shell_comment_is_not_a_package(monkeypatch):
    # `%pip uninstall -q wandb -y  # wandb is glitchy ...`: on Colab the comment must not become package names.
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, check=False, **kw: calls.append(cmd))
    monkeypatch.setenv("COLAB_RELEASE_TAG", "x")
    monkeypatch.delenv("DSA_SKIP_INSTALL", raising=False)
    ns = run_cell("headless", {})
    ns["dsa_pip_install"]("-q wandb -y  # wandb is glitchy with tunix in colab", action="uninstall")
    assert calls and calls[0][-3:] == ["-q", "wandb", "-y"]


def test_unparsable_install_line_is_skipped_not_raised(headless, capsys):
    # A real Kaggle notebook's line has an unclosed quote; its shell failed silently under %%capture.
    ns, calls = headless
    ns["dsa_pip_install"]('"huggingface_hub>=0.34.0" "datasets>=3.4.1,<4.0.', tool="uv")
    assert calls == [] and "not valid shell words" in capsys.readouterr().out
