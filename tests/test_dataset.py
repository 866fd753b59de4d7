"""adapters/dataset.py: validation, reading every source kind, the upstream split, saving, pushing."""

from __future__ import annotations

import copy
import importlib.util
import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters import dataset as ds
from adapters.errors import DatasetError, OutputExistsError
from adapters.synthetic_dipg import generate_rows

_spec = importlib.util.spec_from_file_location(
    "malformed_fixtures", Path(__file__).parent / "fixtures" / "data" / "malformed.py"
)
malformed = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(malformed)


def upstream_reference(rows):
    """FIELD_NOTES §1, written as plainly as upstream did it."""
    rows = list(rows)
    random.seed(42)
    random.shuffle(rows)
    return rows[:1400], rows[1400:1500]


@pytest.fixture(scope="module")
def rows():
    return generate_rows(1500, 42)


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# --- validation ------------------------------------------------------------------------------

def test_valid_fixture_row_is_valid():
    assert ds.validate_row(malformed.VALID_ROW, 0) == []


def test_there_are_at_least_30_malformed_cases():
    assert len(malformed.MALFORMED_ROWS) + len(malformed.MALFORMED_FILES) >= 30
    assert len(malformed.MALFORMED_ROWS) >= 30


@pytest.mark.parametrize("case, make, kind", malformed.MALFORMED_ROWS, ids=[c[0] for c in malformed.MALFORMED_ROWS])
def test_malformed_row_is_reported_with_index_and_reason(case, make, kind):
    row = make(malformed.VALID_ROW)
    issues = ds.row_issues(row)
    assert issues and issues[0].kind == kind
    reasons = ds.validate_row(row, 17)
    assert reasons and all(r.startswith("row 17: ") for r in reasons)
    assert all("\n" not in r for r in reasons)


def test_validate_row_does_not_modify_the_row():
    row = copy.deepcopy(malformed.VALID_ROW)
    row["messages"][1]["content"] = "no tags"
    before = copy.deepcopy(row)
    ds.validate_row(row, 0)
    assert row == before


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=40))
def test_arbitrary_reply_text_never_crashes_validation(text):
    row = copy.deepcopy(malformed.VALID_ROW)
    row["messages"][1]["content"] = text
    reasons = ds.validate_row(row, 3)
    # No text of 40 characters holds the three blocks (their six tags alone take 47): never a valid
    # reply, so there is always exactly one reason, and it is about the reply.
    assert len(reasons) == 1, reasons
    assert reasons[0].startswith(("row 3: messages[1].content", "row 3: message 1 (assistant)")), reasons


@settings(max_examples=60, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
                    max_leaves=8))
def test_arbitrary_json_rows_are_rejected_not_crashing(value):
    assert ds.validate_row(value, 0)  # nothing random is a valid DIPG row


# --- the upstream split ----------------------------------------------------------------------

def test_split_equals_upstream_reference(rows):
    train, test = ds.upstream_split(rows)
    ref_train, ref_test = upstream_reference(rows)
    assert train == ref_train and test == ref_test
    assert len(train) == 1400 and len(test) == 100


def test_split_leaves_input_and_global_random_state_alone(rows):
    before = [r["metadata"]["id"] for r in rows]
    random.seed(123)
    expected_next = random.random()
    random.seed(123)
    ds.upstream_split(rows)
    assert random.random() == expected_next
    assert [r["metadata"]["id"] for r in rows] == before


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=101, max_value=3000))
def test_split_of_other_sizes_is_first_n_minus_100_and_last_100(n):
    items = list(range(n))
    train, test = ds.upstream_split(items)
    shuffled = list(items)
    random.seed(42)
    random.shuffle(shuffled)
    assert train == shuffled[: n - 100] and test == shuffled[n - 100:]
    if n == 1500:
        assert (train, test) == upstream_reference(items)


def test_split_refuses_100_rows_or_fewer():
    with pytest.raises(DatasetError, match="more than 100 rows"):
        ds.upstream_split(list(range(100)))


# --- reading ----------------------------------------------------------------------------------

def test_load_splits_from_jsonl_reproduces_upstream(tmp_path, rows):
    source = write_jsonl(tmp_path / "rows.jsonl", rows)
    before = source.read_bytes()
    dd = ds.load_splits(source)
    ref_train, ref_test = upstream_reference(rows)
    assert [r["metadata"]["id"] for r in dd["train"]] == [r["metadata"]["id"] for r in ref_train]
    assert [r["metadata"]["id"] for r in dd["test"]] == [r["metadata"]["id"] for r in ref_test]
    assert dd["train"][0] == ref_train[0]
    assert source.read_bytes() == before


def test_json_and_parquet_and_jsonl_read_the_same_rows(tmp_path, rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    small = rows[:120]
    jsonl = write_jsonl(tmp_path / "rows.jsonl", small)
    as_json = tmp_path / "rows.json"
    as_json.write_text(json.dumps(small), encoding="utf-8")
    parquet = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist(small), parquet)
    assert ds.load_rows(jsonl) == small
    assert ds.load_rows(as_json) == small
    assert ds.load_rows(parquet) == small


def test_utf8_bom_and_crlf_line_ends_are_accepted(tmp_path, rows):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(r) + "\r\n" for r in rows[:3]).encode("utf-8"))
    assert ds.load_rows(path) == rows[:3]


def test_blank_lines_in_jsonl_are_skipped(tmp_path, rows):
    path = tmp_path / "rows.jsonl"
    path.write_text("\n" + json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n", encoding="utf-8")
    assert ds.load_rows(path) == rows[:2]


def test_saved_dataset_dict_and_split_folder_keep_their_splits(tmp_path, rows):
    dd = ds.load_splits(write_jsonl(tmp_path / "rows.jsonl", rows[:300]))
    out = ds.save_splits(dd, tmp_path / "saved")
    again = ds.load_splits(out)  # a save_to_disk folder (with JSONL copies beside it)
    assert again["train"].to_list() == dd["train"].to_list()
    assert again["test"].to_list() == dd["test"].to_list()
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "train.jsonl").write_bytes((out / "train.jsonl").read_bytes())
    (plain / "test.jsonl").write_bytes((out / "test.jsonl").read_bytes())
    from_files = ds.load_splits(plain)
    assert from_files["train"].to_list() == dd["train"].to_list()
    assert ds.load_rows(plain) == dd["train"].to_list() + dd["test"].to_list()


def test_load_splits_rejects_invalid_rows_naming_the_first(tmp_path, rows):
    bad = copy.deepcopy(rows[:150])
    bad[7]["messages"][1]["content"] = "untagged"
    bad[9]["metadata"]["type"] = "math"
    with pytest.raises(DatasetError) as info:
        ds.load_splits(write_jsonl(tmp_path / "rows.jsonl", bad))
    message = str(info.value)
    assert "row 7:" in message and "missing <think> block" in message and "1 more" in message
    assert "\n" not in message


@pytest.mark.parametrize("case, name, data, words", malformed.MALFORMED_FILES, ids=[c[0] for c in malformed.MALFORMED_FILES])
def test_unreadable_files_give_one_line_errors(tmp_path, case, name, data, words):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(DatasetError) as info:
        ds.load_rows(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    for word in words:
        assert word in message, message
    assert path.read_bytes() == data


def test_missing_path_and_folder_without_splits(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        ds.load_rows(tmp_path / "absent.jsonl")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(DatasetError, match="no train/test files"):
        ds.load_rows(tmp_path / "empty_dir")


# --- writing and pushing ---------------------------------------------------------------------

def test_save_splits_writes_whole_folder_and_refuses_existing(tmp_path, rows):
    dd = ds.load_splits(write_jsonl(tmp_path / "rows.jsonl", rows[:200]))
    out = ds.save_splits(dd, tmp_path / "out")
    assert {p.name for p in out.iterdir()} >= {"dataset_dict.json", "train", "test", "train.jsonl", "test.jsonl"}
    train_lines = (out / "train.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in train_lines] == dd["train"].to_list()
    with pytest.raises(OutputExistsError):
        ds.save_splits(dd, out)
    (out / "marker").write_text("old")
    ds.save_splits(dd, out, force=True)
    assert not (out / "marker").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "rows.jsonl"]  # no temp folders left


class _FailingDict(dict):
    def save_to_disk(self, path):
        Path(path, "partial").write_text("half-written")
        raise OSError("disk full")


def test_failed_save_leaves_nothing_and_keeps_previous_output(tmp_path):
    with pytest.raises(OSError):
        ds.save_splits(_FailingDict(), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []
    previous = tmp_path / "kept"
    previous.mkdir()
    (previous / "train.jsonl").write_text("old")
    with pytest.raises(OSError):
        ds.save_splits(_FailingDict(), previous, force=True)
    assert (previous / "train.jsonl").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["kept"]


class _PushRecorder:
    def __init__(self, error=None):
        self.calls, self.error = [], error

    def push_to_hub(self, repo, token=None):
        self.calls.append((repo, token))
        if self.error:
            raise self.error


def test_push_needs_a_token(monkeypatch):
    for name in ds.TOKEN_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    recorder = _PushRecorder()
    with pytest.raises(DatasetError, match="set HF_TOKEN"):
        ds.push_to_hub(recorder, "me/dipg")
    assert recorder.calls == []


def test_push_offline_fails_clearly_without_showing_the_token(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secretvalue123")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    recorder = _PushRecorder()
    with pytest.raises(DatasetError) as info:
        ds.push_to_hub(recorder, "me/dipg")
    assert "HF_HUB_OFFLINE" in str(info.value) and "hf_secretvalue123" not in str(info.value)
    assert recorder.calls == []


def test_push_uses_env_token_and_scrubs_it_from_failures(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", "hf_othersecret456")
    recorder = _PushRecorder(RuntimeError("401 Unauthorized for token hf_othersecret456\nmore detail"))
    with pytest.raises(DatasetError) as info:
        ds.push_to_hub(recorder, "me/dipg")
    assert recorder.calls == [("me/dipg", "hf_othersecret456")]
    message = str(info.value)
    assert "hf_othersecret456" not in message and "***" in message and "\n" not in message


def test_push_rejects_a_bad_repo_id(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_x")
    with pytest.raises(DatasetError, match="not a hub repo id"):
        ds.push_to_hub(_PushRecorder(), "no-slash")
