"""Malformed and hostile notebooks: each gives one ``error:`` line and the promised exit code,
leaves the input byte for byte as it was, and writes no output (not even a temp file).

The cases are generated from the fixtures (truncations, mutations) plus hand-written ones; the
CLI runs in-process (``adapt_dsa_notebook.main``) so 60+ cases stay fast, and a few run as real
processes to prove no traceback reaches the terminal.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "notebooks"
CLI = ROOT / "scripts" / "adapt_dsa_notebook.py"
sys.path.insert(0, str(ROOT / "scripts"))
import adapt_dsa_notebook  # noqa: E402

GOOD = json.loads((FIXTURES / "trl_sft.ipynb").read_text())
GOOD_TEXT = (FIXTURES / "trl_sft.ipynb").read_text()
KAGGLE_TEXT = (FIXTURES / "kaggle_dsa_tunix.ipynb").read_text()


def _mutate(fn):
    data = copy.deepcopy(GOOD)
    fn(data)
    return json.dumps(data)


def _set(path, value):
    def fn(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return fn


def _del(path):
    def fn(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return fn


def _plain(cells, minor=5):
    out = []
    for index, (kind, source) in enumerate(cells):
        cell = {"cell_type": kind, "metadata": {}, "source": source, "id": f"c{index}"}
        if kind == "code":
            cell.update(outputs=[], execution_count=None)
        out.append(cell)
    return json.dumps({"cells": out, "metadata": {}, "nbformat": 4, "nbformat_minor": minor})


# (case id, file content (str or bytes), expected exit code, a word the message must contain)
CASES = [
    ("empty-file", "", 2, "empty"),
    ("whitespace-only", "   \n\t\n", 2, "empty"),
    ("plain-text", "this is not a notebook\n", 2, "not JSON"),
    ("html-error-page", "<!DOCTYPE html><html><body>404</body></html>", 2, "not JSON"),
    ("python-source", "import os\nprint(os.getcwd())\n", 2, "not JSON"),
    ("yaml", "cells:\n  - code\n", 2, "not JSON"),
    ("jupytext-percent", "# %%\nprint(1)\n", 2, "not JSON"),
    ("binary-bytes", bytes(range(256)), 2, "UTF-8"),
    ("latin1-bytes", GOOD_TEXT.replace("Supervised", "Supervis\u00e9d").encode("latin-1"), 2, "UTF-8"),
    ("gzip-magic", b"\x1f\x8b\x08\x00\x00\x00\x00\x00", 2, "UTF-8"),
    ("trailing-garbage", GOOD_TEXT + "}}", 2, "not JSON"),
    ("single-quotes", GOOD_TEXT.replace('"', "'"), 2, "not JSON"),
    ("json-list", "[1, 2, 3]", 2, "list"),
    ("json-string", '"notebook"', 2, "str"),
    ("json-number", "42", 2, "int"),
    ("json-null", "null", 2, "NoneType"),
    ("deep-nesting", "[" * 100000 + "]" * 100000, 2, "JSON"),
    ("nbformat-3", json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": []}]}), 2, "nbformat 3"),
    ("nbformat-2", json.dumps({"nbformat": 2, "metadata": {}, "worksheets": []}), 2, "nbformat 2"),
    ("nbformat-5", _mutate(_set(["nbformat"], 5)), 2, "newer"),
    ("nbformat-string", _mutate(_set(["nbformat"], "4")), 2, "not an integer"),
    ("nbformat-bool", _mutate(_set(["nbformat"], True)), 2, "not an integer"),
    ("nbformat-missing", _mutate(_del(["nbformat"])), 2, "nbformat"),
    ("minor-negative", _mutate(_set(["nbformat_minor"], -1)), 2, "nbformat_minor"),
    ("minor-string", _mutate(_set(["nbformat_minor"], "five")), 2, "nbformat_minor"),
    ("no-cells-list", _mutate(_set(["cells"], [])), 2, "no cells"),
    ("cells-missing", _mutate(_del(["cells"])), 2, "cells"),
    ("cells-dict", _mutate(_set(["cells"], {"0": {}})), 2, "not a list"),
    ("cells-string", _mutate(_set(["cells"], "print(1)")), 2, "not a list"),
    ("metadata-list", _mutate(_set(["metadata"], [])), 2, "metadata"),
    ("cell-not-object", _mutate(_set(["cells", 1], "print(1)")), 2, "cell 1"),
    ("cell-type-heading", _mutate(_set(["cells", 0, "cell_type"], "heading")), 2, "cell 0"),
    ("cell-type-missing", _mutate(_del(["cells", 2, "cell_type"])), 2, "cell 2"),
    ("source-int", _mutate(_set(["cells", 1, "source"], 7)), 2, "cell 1"),
    ("source-list-of-int", _mutate(_set(["cells", 1, "source"], ["a", 1])), 2, "cell 1"),
    ("source-nul-byte", _mutate(_set(["cells", 1, "source"], "print(1)\x00")), 2, "NUL"),
    ("cell-metadata-list", _mutate(_set(["cells", 1, "metadata"], [])), 2, "cell 1"),
    ("outputs-dict", _mutate(_set(["cells", 1, "outputs"], {})), 2, "cell 1"),
    ("output-type-bogus", _mutate(_set(["cells", 1, "outputs"], [{"output_type": "bogus"}])), 2, "valid"),
    ("stream-without-name", _mutate(_set(["cells", 1, "outputs"], [{"output_type": "stream", "text": "x"}])), 2, "valid"),
    ("execution-count-string", _mutate(_set(["cells", 1, "execution_count"], "one")), 2, "valid"),
    ("unknown-top-level-key", _mutate(_set(["worksheets"], [])), 2, "valid"),
    ("kernelspec-not-object", _mutate(_set(["metadata", "kernelspec"], "python3")), 2, "valid"),
    ("base-code-does-not-parse", _mutate(_set(["cells", 7, "source"], "peft_config = LoraConfig(r=16,\n")), 2, "parse"),
    ("kit-marker-path-traversal", _mutate(_set(["cells", 2, "metadata"], {"dsa_kit": {"cell": "../../errors"}})), 2, "unknown kit cell"),
    ("kit-marker-unknown-cell", _mutate(_set(["cells", 2, "metadata"], {"dsa_kit": {"cell": "nope"}})), 2, "unknown kit cell"),
    ("unknown-hello-world", _plain([("code", "print('hello')")]), 3, "signatures"),
    ("unknown-markdown-only", _plain([("markdown", "# Notes\nNothing to run.")]), 3, "signatures"),
    ("unknown-raw-only", _plain([("raw", "raw text")]), 3, "signatures"),
    ("unknown-r-notebook", _plain([("code", "library(ggplot2)\nqplot(1:10)")]), 3, "signatures"),
    ("unknown-gsm8k-without-trainer", _plain([("code", 'from datasets import load_dataset\nds = load_dataset("openai/gsm8k", "main")')]), 3, "signatures"),
    ("unknown-keras", _plain([("code", "import keras\nmodel = keras.Sequential()\nmodel.fit(x, y)")]), 3, "signatures"),
    ("unknown-empty-code", _plain([("code", "")]), 3, "signatures"),
]
# Truncated downloads of two real-shaped fixtures at several points.
for fraction in (0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99):
    CASES.append((f"truncated-trl-{fraction}", GOOD_TEXT[: int(len(GOOD_TEXT) * fraction)], 2, "truncated"))
for fraction in (0.33, 0.66):
    CASES.append((f"truncated-kaggle-{fraction}", KAGGLE_TEXT[: int(len(KAGGLE_TEXT) * fraction)], 2, "truncated"))
CASES.append(("truncated-last-brace", GOOD_TEXT.rstrip()[:-1], 2, "truncated"))


def test_at_least_fifty_cases():
    assert len(CASES) >= 50
    assert len({case[0] for case in CASES}) == len(CASES)


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("case_id,content,code,word", CASES, ids=[c[0] for c in CASES])
def test_bad_notebook(tmp_path, capsys, case_id, content, code, word):
    path = tmp_path / "base.ipynb"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    before = path.read_bytes()
    listing = _listing(tmp_path)
    rc = adapt_dsa_notebook.main([str(path), "-o", str(tmp_path / "out.ipynb"), "--quiet"])
    captured = capsys.readouterr()
    assert rc == code, captured.err
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert word.lower() in lines[0].lower(), lines[0]
    if code == 2:
        assert "base.ipynb" in lines[0]  # names the file
    assert path.read_bytes() == before
    assert _listing(tmp_path) == listing  # no output, no temp file


def test_missing_input_and_directory(tmp_path, capsys):
    assert adapt_dsa_notebook.main([str(tmp_path / "nope.ipynb")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert adapt_dsa_notebook.main([str(tmp_path)]) == 2
    assert "directory" in capsys.readouterr().err


def _good_copy(tmp_path) -> Path:
    path = tmp_path / "trl_sft.ipynb"
    path.write_text(GOOD_TEXT, encoding="utf-8")
    return path


def test_output_exists(tmp_path, capsys):
    base = _good_copy(tmp_path)
    out = tmp_path / "taken.ipynb"
    out.write_text("keep me")
    assert adapt_dsa_notebook.main([str(base), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "exists" in err and err.count("\n") == 1
    assert out.read_text() == "keep me"


def test_output_folder_missing_or_unwritable(tmp_path, capsys, monkeypatch):
    """Outputs that cannot be written, each checkable as root (CI runs as root): exit 2, one error line
    naming the output, the input byte for byte as it was, nothing written anywhere."""
    base = _good_copy(tmp_path)
    before = base.read_bytes()
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    taken = tmp_path / "taken.ipynb"
    taken.mkdir()
    listing = _listing(tmp_path)

    def refused(output: Path, words: str, *extra: str) -> None:
        assert adapt_dsa_notebook.main([str(base), "-o", str(output), "--quiet", *extra]) == 2
        captured = capsys.readouterr()
        lines = captured.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {output}: "), captured.err
        assert words in lines[0], captured.err
        assert captured.out == ""
        assert base.read_bytes() == before
        assert _listing(tmp_path) == listing  # no output, no temp file
        assert blocker.read_text() == "a file, not a folder" and list(taken.iterdir()) == []

    refused(tmp_path / "no" / "such" / "out.ipynb", "does not exist")
    # The output's folder is a file: no folder can be made there, whoever runs the test.
    refused(blocker / "out.ipynb", f"folder {blocker} is not a folder")
    refused(blocker / "sub" / "out.ipynb", "does not exist")
    # The output is an existing folder: refused, and not replaced even with --force.
    refused(taken, "exists; pass --force")
    refused(taken, "is a directory", "--force")
    # A folder the user cannot write to. Root writes anywhere, so its permission check is what is
    # tested: os.access answers "not writable" for this folder, as it does for a non-root user.
    locked = tmp_path / "locked"
    locked.mkdir()
    listing = _listing(tmp_path)
    real_access = os.access

    def access(path, mode, *args, **kwargs):
        if Path(path) == locked and mode & os.W_OK:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)
    refused(locked / "out.ipynb", "is not writable")
    assert list(locked.iterdir()) == []
    monkeypatch.setattr(os, "access", real_access)
    # The write itself fails (a full disk, a read-only mount): still one line, no temp file left over.
    import adapters.notebook_io as notebook_io

    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(notebook_io.os, "replace", failing_replace)
    refused(tmp_path / "out.ipynb", "No space left on device")


def test_same_path_without_in_place(tmp_path, capsys):
    base = _good_copy(tmp_path)
    before = base.read_bytes()
    assert adapt_dsa_notebook.main([str(base), "-o", str(base)]) == 2
    assert "--in-place" in capsys.readouterr().err
    assert base.read_bytes() == before
    assert adapt_dsa_notebook.main([str(base), "--in-place", "-o", str(tmp_path / "other.ipynb")]) == 2
    assert base.read_bytes() == before


def test_usage_errors_are_one_line(tmp_path):
    done = subprocess.run([sys.executable, str(CLI)], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.startswith("error:") and done.stderr.count("\n") == 1


@pytest.mark.parametrize("content,code", [("not json", 2), (_plain([("code", "print(1)")]), 3), (GOOD_TEXT[:500], 2)])
def test_real_process_prints_no_traceback(tmp_path, content, code):
    path = tmp_path / "x.ipynb"
    path.write_text(content)
    done = subprocess.run([sys.executable, str(CLI), str(path)], capture_output=True, text=True)
    assert done.returncode == code
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
    assert not (tmp_path / "x.dsa.ipynb").exists()
