"""The kit as an installable package (``make wheel``) and the DSA core cell as Colab shows it.

* The wheel is built from a copy of ``pyproject.toml`` + ``adapters/`` (the checkout is never written),
  offline with the environment's setuptools, installed with ``pip --target`` into a temporary folder and
  imported by a clean interpreter (``python -I``, cwd outside the repository, so ``sys.path`` holds no
  checkout): the installed package must be the whole kit, i.e. rebuild exactly the core cell and every
  kit cell the checkout builds.
* The inlined core cell starts with a Colab form title (collapsed in Colab), still compiles (the
  ``from __future__`` import stays first among statements), and the DSA notebooks carry that line in
  both files of their jupytext pair.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from adapters import cells
from adapters.patcher import KIT_KEY

ROOT = Path(__file__).resolve().parents[1]
DSA_DIR = ROOT / "notebooks" / "dsa"
COLAB_FORM_TITLE = re.compile(r'^#\s?@title [^{}]+ \{display-mode: "form"\}$')


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    shutil.copy(ROOT / "pyproject.toml", src / "pyproject.toml")
    shutil.copytree(ROOT / "adapters", src / "adapters", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q", "-w", str(dist)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheels = list(dist.glob("dsa_notebook_kit-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_holds_the_adapters_package_and_nothing_else(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"adapters", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}
    expected = {p.relative_to(ROOT).as_posix() for p in (ROOT / "adapters").rglob("*.py")
                if "__pycache__" not in p.parts}
    assert {n for n in names if n.endswith(".py")} == expected
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "Name: dsa-notebook-kit" in metadata
    assert re.findall(r"^Requires-Dist: (.+)$", metadata, re.MULTILINE) == ["numpy"]


def test_installed_wheel_imports_without_the_checkout_and_rebuilds_the_same_cells(wheel, tmp_path):
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(site), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    probe = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(site)!r})\n"
        "import os\n"
        "others = [p for p in sys.path[1:] if os.path.exists(os.path.join(p or '.', 'adapters'))]\n"
        "assert not others, others  # only the installed wheel provides adapters\n"
        "import adapters, adapters.masking, adapters.patcher\n"
        "from adapters import cells\n"
        "out = {'file': adapters.__file__, 'core': cells.build_core_source(),\n"
        "       'cells': {n: cells.load_cell(n).source for n in cells.cell_names()}}\n"
        "print(json.dumps(out))\n"
    )
    run = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout)
    assert Path(out["file"]).resolve().is_relative_to(site.resolve())
    assert out["core"] == cells.build_core_source()
    assert out["cells"] == {name: cells.load_cell(name).source for name in cells.cell_names()}


def test_core_cell_starts_with_a_colab_form_title_and_still_compiles():
    source = cells.build_core_source()
    first, rest = source.split("\n", 1)
    assert first == cells.CORE_TITLE
    assert COLAB_FORM_TITLE.match(first)
    assert "@title" not in rest  # one title, on the first line (Colab reads only that one)
    compile(source, "<cell dsa_core>", "exec")  # the __future__ import is still the first statement


@pytest.mark.parametrize("notebook", sorted(DSA_DIR.glob("*.ipynb")), ids=lambda p: p.stem)
def test_dsa_notebooks_carry_the_collapsed_core_cell_in_both_pair_files(notebook):
    data = json.loads(notebook.read_text(encoding="utf-8"))
    core = [c for c in data["cells"] if c.get("metadata", {}).get(KIT_KEY, {}).get("cell") == cells.CORE_CELL]
    assert len(core) == 1
    source = "".join(core[0]["source"])
    assert source.split("\n", 1)[0] == cells.CORE_TITLE
    paired = notebook.with_suffix(".py").read_text(encoding="utf-8")
    assert re.search(r"^# %%[^\n]*\n" + re.escape(cells.CORE_TITLE) + "\n", paired, re.MULTILINE)
