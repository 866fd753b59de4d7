"""Shared fixtures. Keep this small and stable: other test modules rely on these names.

* ``repo_root``: the checkout root (a ``pathlib.Path``).
* ``tiny_model_dir``: ``models/tiny-gemma3`` (skips the test if the lead's build has not run).
* ``tokenizer``: the real Gemma-3 fast tokenizer with the kit's chat template, loaded once per session.
* ``offline_jsonl``: ``data/dipg_offline.jsonl`` (skips if ``make data`` has not run).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

TINY_MODEL_DIR = REPO_ROOT / "models" / "tiny-gemma3"
OFFLINE_JSONL = REPO_ROOT / "data" / "dipg_offline.jsonl"


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
