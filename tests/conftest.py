"""Shared fixtures and the CI rule on skips. Keep this small and stable: other test modules rely on it.

* ``repo_root``: the checkout root (a ``pathlib.Path``).
* ``tiny_model_dir``: ``models/tiny-gemma3`` (skips the test if the lead's build has not run).
* ``tokenizer``: the real Gemma-3 fast tokenizer with the kit's chat template, loaded once per session.
* ``offline_jsonl``: ``data/dipg_offline.jsonl`` (skips if ``make data`` has not run).

**A skip is a failure in CI.** Tests skip, with the reason, when a prerequisite is missing (a model, the
data, a family venv or kernel, the gym package, papermill/jupytext, ``../shared/base_notebooks``): that is
right in a user's partial clone. ``.ci/run`` exports ``DSA_CI=1``; with it set, every skip (a ``pytest.skip``
call, ``importorskip``, a ``skipif`` marker, in a test, a fixture or at collection) is reported as a
failure instead, its reason kept, so a set-up step that silently stopped building something turns CI red.
A strict ``xfail`` is not a skip and is left alone. One skip stays a skip: the real public notebooks
(``../shared/base_notebooks/``) being absent, which is a user's clone by design (issue 10). See tests/README.md.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

TINY_MODEL_DIR = REPO_ROOT / "models" / "tiny-gemma3"
OFFLINE_JSONL = REPO_ROOT / "data" / "dipg_offline.jsonl"

# ---------------------------------------------------------------------------------- skips in CI

from adapters.notebook_runs import NO_REAL_NOTEBOOKS  # noqa: E402  (the one skip CI allows: issue 10)

CI_VARIABLE = "DSA_CI"
CI_PREFIX = f"{CI_VARIABLE}=1: a skipped test is a failure (missing prerequisite)"


def in_ci() -> bool:
    """True where ``DSA_CI`` is set to anything but empty or ``0`` (``.ci/run`` sets ``DSA_CI=1``)."""
    return os.environ.get(CI_VARIABLE, "").strip() not in ("", "0")


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (path, line, "Skipped: reason")
        return f"{longrepr[2]} ({longrepr[0]}:{longrepr[1]})"
    return str(longrepr)


def _fail_if_skipped(report) -> None:
    """Turn a skipped report into a failed one that carries the skip's reason (CI only)."""
    allowed = NO_REAL_NOTEBOOKS in _skip_reason(report) if report.skipped else False
    if in_ci() and report.skipped and not hasattr(report, "wasxfail") and not allowed:
        report.outcome = "failed"
        report.longrepr = f"{CI_PREFIX}: {_skip_reason(report)}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    _fail_if_skipped(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    report = yield
    _fail_if_skipped(report)
    return report


def pytest_report_header(config):
    if in_ci():
        return f"{CI_VARIABLE}=1: every skip is reported as a failure (tests/README.md)"
    return None


# ---------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    if not (TINY_MODEL_DIR / "tokenizer.json").exists():
        pytest.skip(f"{TINY_MODEL_DIR} is absent: run `make models` (scripts/build_offline_models.py)")
    return TINY_MODEL_DIR


@pytest.fixture(scope="session")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


@pytest.fixture(scope="session")
def offline_jsonl() -> Path:
    if not OFFLINE_JSONL.exists():
        pytest.skip(f"{OFFLINE_JSONL} is absent: run `make data` (scripts/make_dipg_dataset.py)")
    return OFFLINE_JSONL
