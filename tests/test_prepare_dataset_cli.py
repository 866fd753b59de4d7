"""The two data CLIs run as subprocesses: exit codes, one-line errors, atomic outputs, summaries."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.synthetic_dipg import generate_rows

ROOT = Path(__file__).resolve().parent.parent
PREPARE = ROOT / "scripts" / "prepare_dataset.py"
MAKE = ROOT / "scripts" / "make_dipg_dataset.py"

_spec = importlib.util.spec_from_file_location(
    "malformed_fixtures", Path(__file__).parent / "fixtures" / "data" / "malformed.py"
)
malformed = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(malformed)


def run(script: Path, *args, env=None, cwd=None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **(env or {})}
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if env is None or name not in env:
            full_env.pop(name, None)
    return subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True,
                          env=full_env, cwd=cwd or ROOT, timeout=300)


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def assert_one_line_errors(result, code=2):
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = error_lines(result)
    assert lines and all(line.startswith("error: ") for line in lines), result.stderr
    assert "Traceback" not in result.stderr


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def written_splits(out: Path) -> tuple[list, list]:
    """Open what prepare_dataset wrote: the saved DatasetDict and its JSONL copies must hold the same rows."""
    import datasets

    dd = datasets.load_from_disk(str(out))
    assert sorted(dd) == ["test", "train"]
    splits = []
    for name in ("train", "test"):
        rows = dd[name].to_list()
        text = (out / f"{name}.jsonl").read_text(encoding="utf-8")
        copies = [json.loads(line) for line in text.splitlines()]
        assert rows and copies == rows, name
        splits.append(rows)
    return splits[0], splits[1]


def upstream(rows) -> tuple[list, list]:
    """FIELD_NOTES §1 written out: random.seed(42) shuffle, last 100 rows test."""
    shuffled = list(rows)
    random.seed(42)
    random.shuffle(shuffled)
    return shuffled[:-100], shuffled[-100:]


# --- make_dipg_dataset.py --------------------------------------------------------------------

def test_make_dataset_twice_is_byte_identical(tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    r1 = run(MAKE, "--out", first, "--rows", 300, "--seed", 5)
    r2 = run(MAKE, "--out", second, "--rows", 300, "--seed", 5)
    assert r1.returncode == 0 and r2.returncode == 0, r1.stderr + r2.stderr
    assert first.read_bytes() == second.read_bytes()
    assert len(first.read_text(encoding="utf-8").splitlines()) == 300
    assert "distinct answers:" in r1.stdout and "distinct contexts: 300" in r1.stdout
    assert "reasoning 120" in r1.stdout


def test_make_dataset_refuses_existing_output_without_force(tmp_path):
    out = tmp_path / "rows.jsonl"
    out.write_text("keep me")
    result = run(MAKE, "--out", out, "--rows", 10)
    assert_one_line_errors(result)
    assert "already exists" in result.stderr and out.read_text() == "keep me"
    assert run(MAKE, "--out", out, "--rows", 10, "--force").returncode == 0
    assert len(out.read_text().splitlines()) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.jsonl"]


@pytest.mark.parametrize("args", [["--rows", "0"], ["--out-suffix"]])
def test_make_dataset_bad_arguments(tmp_path, args):
    if args == ["--out-suffix"]:
        result = run(MAKE, "--out", tmp_path / "rows.txt")
        assert_one_line_errors(result)
        assert ".jsonl" in result.stderr
    else:
        result = run(MAKE, "--out", tmp_path / "rows.jsonl", *args)
        assert_one_line_errors(result)
    assert list(tmp_path.iterdir()) == []


def test_help_shows_an_example():
    for script in (MAKE, PREPARE):
        result = run(script, "--help")
        assert result.returncode == 0 and "Example" in result.stdout


# --- prepare_dataset.py: happy paths ---------------------------------------------------------

@pytest.fixture(scope="module")
def offline_rows():
    return generate_rows(1500, 42)


def test_prepare_reproduces_the_upstream_split_and_writes_jsonl_copies(tmp_path, offline_rows):
    source = write_jsonl(tmp_path / "dipg.jsonl", offline_rows)
    before = source.read_bytes()
    out = tmp_path / "dipg"
    result = run(PREPARE, source, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "train: 1400 rows" in result.stdout and "test: 100 rows" in result.stdout
    assert "reasoning" in result.stdout and "haystack" in result.stdout

    shuffled = list(offline_rows)
    random.seed(42)
    random.shuffle(shuffled)
    train, test = written_splits(out)
    assert len(train) == 1400 and len(test) == 100
    assert train == shuffled[:1400] and test == shuffled[1400:1500]
    assert source.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dipg", "dipg.jsonl"]

    # A prepared folder is itself a source whose split is kept.
    again = run(PREPARE, out, "--out", tmp_path / "again")
    assert again.returncode == 0 and "source splits kept" in again.stdout
    assert written_splits(tmp_path / "again") == (train, test)
    assert (tmp_path / "again" / "test.jsonl").read_bytes() == (out / "test.jsonl").read_bytes()


def test_existing_out_is_refused_without_force(tmp_path, offline_rows):
    source = write_jsonl(tmp_path / "rows.jsonl", offline_rows[:150])
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep").write_text("x")
    result = run(PREPARE, source, "--out", out)
    assert_one_line_errors(result)
    assert "already exists" in result.stderr and (out / "keep").exists()
    forced = run(PREPARE, source, "--out", out, "--force")
    assert forced.returncode == 0, forced.stderr
    assert not (out / "keep").exists() and "train: 50 rows" in forced.stdout
    train, test = written_splits(out)
    assert (len(train), len(test)) == (50, 100)
    assert (train, test) == upstream(offline_rows[:150])


def test_skip_invalid_counts_reasons_and_drops_rows(tmp_path, offline_rows):
    rows = copy.deepcopy(offline_rows[:160])
    rows[3]["messages"][1]["content"] = "no tags at all"
    rows[8]["messages"][1]["content"] = "still no tags"
    rows[20]["metadata"]["type"] = "math"
    rows[33].pop("metadata")
    source = write_jsonl(tmp_path / "rows.jsonl", rows)
    result = run(PREPARE, source, "--out", tmp_path / "out", "--skip-invalid")
    assert result.returncode == 0, result.stderr
    assert "skipped 4 invalid row(s)" in result.stdout
    assert "reply_missing_tag: 2" in result.stdout
    assert "bad_type: 1" in result.stdout and "missing_metadata: 1" in result.stdout
    assert "train: 56 rows" in result.stdout and "test: 100 rows" in result.stdout
    # The written splits hold exactly the 156 valid rows, split the upstream way.
    train, test = written_splits(tmp_path / "out")
    assert (len(train), len(test)) == (56, 100)
    valid = [row for i, row in enumerate(rows) if i not in (3, 8, 20, 33)]
    assert (train, test) == upstream(valid)


# --- prepare_dataset.py: malformed inputs ----------------------------------------------------

def test_every_malformed_row_is_listed_on_its_own_line(tmp_path, offline_rows):
    """All malformed cases in one file, between valid rows; each gets exactly one error line."""
    rows, expected = [], {}
    for position, (case, make, _) in enumerate(malformed.MALFORMED_ROWS):
        rows.append(offline_rows[position])
        expected[len(rows)] = case
        rows.append(make(malformed.VALID_ROW))
    source = tmp_path / "bad.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    before = source.read_bytes()
    out = tmp_path / "out"
    result = run(PREPARE, source, "--out", out)
    assert_one_line_errors(result)
    lines = error_lines(result)
    row_lines = [line for line in lines if line.startswith("error: row ")]
    assert [int(line.split()[2].rstrip(":")) for line in row_lines] == sorted(expected), result.stderr
    assert all(str(source) in line for line in row_lines)
    assert lines[-1] == f"error: {source}: {len(expected)} of {len(rows)} rows invalid (use --skip-invalid to drop them)"
    assert source.read_bytes() == before
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]


@pytest.mark.parametrize("case, make, kind", malformed.MALFORMED_ROWS[:8], ids=[c[0] for c in malformed.MALFORMED_ROWS[:8]])
def test_single_malformed_row_file(tmp_path, offline_rows, case, make, kind):
    rows = list(offline_rows[:5]) + [make(malformed.VALID_ROW)] + list(offline_rows[5:8])
    source = write_jsonl(tmp_path / "rows.jsonl", rows)
    result = run(PREPARE, source, "--out", tmp_path / "out")
    assert_one_line_errors(result)
    assert error_lines(result)[0].startswith("error: row 5: ")
    assert len(error_lines(result)) == 2
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case, name, data, words", malformed.MALFORMED_FILES, ids=[c[0] for c in malformed.MALFORMED_FILES])
def test_unreadable_file(tmp_path, case, name, data, words):
    source = tmp_path / name
    source.write_bytes(data)
    out = tmp_path / "out"
    result = run(PREPARE, source, "--out", out)
    assert_one_line_errors(result)
    assert len(error_lines(result)) == 1 and str(source) in result.stderr
    for word in words:
        assert word in result.stderr
    assert source.read_bytes() == data and not out.exists()


def test_too_few_rows_to_split(tmp_path, offline_rows):
    source = write_jsonl(tmp_path / "rows.jsonl", offline_rows[:100])
    result = run(PREPARE, source, "--out", tmp_path / "out")
    assert_one_line_errors(result)
    assert "more than 100 rows" in result.stderr and not (tmp_path / "out").exists()


def test_missing_source(tmp_path):
    result = run(PREPARE, tmp_path / "nope.jsonl", "--out", tmp_path / "out")
    assert_one_line_errors(result)
    assert "no such file" in result.stderr


def test_hub_id_offline_fails_with_one_clear_line(tmp_path):
    result = run(PREPARE, "surfiniaburger/dipg-safety-instruction-1500", "--out", tmp_path / "out")
    assert_one_line_errors(result)
    assert len(error_lines(result)) == 1
    assert "surfiniaburger/dipg-safety-instruction-1500" in result.stderr and "hub" in result.stderr
    assert not (tmp_path / "out").exists()


def test_push_without_token_or_offline_fails_before_writing_and_never_prints_a_token(tmp_path, offline_rows):
    source = write_jsonl(tmp_path / "rows.jsonl", offline_rows[:120])
    result = run(PREPARE, source, "--out", tmp_path / "out", "--push-to-hub", "me/dipg")
    assert_one_line_errors(result)
    assert "HF_TOKEN" in result.stderr
    secret = "hf_supersecret789"
    with_token = run(PREPARE, source, "--out", tmp_path / "out2", "--push-to-hub", "me/dipg", env={"HF_TOKEN": secret})
    assert_one_line_errors(with_token)
    assert "HF_HUB_OFFLINE" in with_token.stderr
    assert secret not in with_token.stderr and secret not in with_token.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.jsonl"]
