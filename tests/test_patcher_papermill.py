"""Each adapted fixture is papermill-ready: ``papermill --prepare-only -p MODEL_ID … -p DATASET_ID …``
injects the parameters right after the kit's ``parameters`` cell, with no kernel started.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import papermill
import pytest

from adapters.notebook_io import dumps_notebook, read_notebook
from adapters.patcher import adapt

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "notebooks"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.ipynb"))
PAPERMILL = Path(sys.executable).parent / "papermill"


def _adapted_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.dsa.ipynb"
    path.write_text(dumps_notebook(adapt(read_notebook(FIXTURES / f"{name}.ipynb")).nb), encoding="utf-8")
    return path


def _check_injected(path: Path, model: str, dataset: str) -> None:
    nb = json.loads(path.read_text())
    tags = [c["metadata"].get("tags", []) for c in nb["cells"]]
    where = next(i for i, t in enumerate(tags) if "parameters" in t)
    assert "injected-parameters" in tags[where + 1]
    injected = "".join(nb["cells"][where + 1]["source"])
    assert f'MODEL_ID = "{model}"' in injected and f'DATASET_ID = "{dataset}"' in injected


@pytest.mark.parametrize("name", NAMES)
def test_prepare_only_api(tmp_path, name):
    source = _adapted_file(tmp_path, name)
    out = tmp_path / "prepared.ipynb"
    papermill.execute_notebook(
        str(source), str(out), parameters={"MODEL_ID": "models/tiny-gemma3", "DATASET_ID": "data/dipg", "MAX_STEPS": 2},
        prepare_only=True, progress_bar=False, log_output=False,
    )
    _check_injected(out, "models/tiny-gemma3", "data/dipg")


@pytest.mark.skipif(not PAPERMILL.exists(), reason="papermill CLI not in this environment")
def test_prepare_only_cli(tmp_path):
    source = _adapted_file(tmp_path, "kaggle_dsa_tunix")
    out = tmp_path / "prepared.ipynb"
    done = subprocess.run(
        [str(PAPERMILL), "--prepare-only", str(source), str(out), "-p", "MODEL_ID", "m", "-p", "DATASET_ID", "d",
         "-p", "MAX_STEPS", "3"],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    _check_injected(out, "m", "d")
    cells = json.loads(out.read_text())["cells"]
    injected = "".join(next(c for c in cells if "injected-parameters" in c["metadata"].get("tags", []))["source"])
    assert "MAX_STEPS = 3" in injected  # -p values are type-coerced
