"""scripts/inspect_masks.py: counts, decoded spans, dropped rows, --json, one-line errors."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from adapters.masking import mask_batch

SCRIPT = os.path.join(os.path.dirname(__file__), os.pardir, "scripts", "inspect_masks.py")


def _load_cli():
    spec = importlib.util.spec_from_file_location("inspect_masks_cli", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(i: int, context_words: int = 5, kind: str = "reasoning") -> dict:
    context = " ".join(f"fact{i}-{j}" for j in range(context_words)) + f". Median OS was {i}.5 months."
    return {
        "messages": [
            {"role": "user", "content": f"<context>\n{context}\n</context>\n\n<question>\nWhat was median OS?\n</question>"},
            {"role": "assistant", "content": f"<think>\nThe context says it.\n</think>\n\n<proof>\nMedian OS was {i}.5 months.\n"
             f"</proof>\n\n<answer>\n{i}.5 months\n</answer>"},
        ],
        "metadata": {"id": f"row-{i}", "type": kind, "source": "synthetic test", "timestamp": "2025-01-01T00:00:00"},
    }


@pytest.fixture()
def small_dataset(tmp_path):
    """A pre-split folder (train 4 rows, one of them long; test 1 row)."""
    folder = tmp_path / "ds"
    folder.mkdir()
    train = [_row(0), _row(1, context_words=300, kind="haystack"), _row(2), _row(3)]
    for name, rows in (("train", train), ("test", [_row(9)])):
        with open(folder / f"{name}.jsonl", "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(r) + "\n" for r in rows)
    return folder, train


@pytest.fixture()
def cli(tokenizer, monkeypatch):
    module = _load_cli()
    monkeypatch.setattr(module, "load_tokenizer", lambda path: tokenizer)
    return module


def test_json_report_matches_masking(cli, tokenizer, small_dataset, capsys):
    folder, train = small_dataset
    assert cli.main([str(folder), "--tokenizer", "tiny", "--json", "--rows", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    examples, dropped = mask_batch(train, tokenizer)
    assert dropped == [] and report["dropped"] == []
    assert [(r["index"], r["id"], r["tokens"], r["trained"]) for r in report["per_row"]] == [
        (i, train[i]["metadata"]["id"], len(ex.input_ids), ex.n_trained) for i, ex in examples
    ]
    assert report["rows"] == report["kept"] == 4
    assert report["tokens"] == sum(len(ex.input_ids) for _, ex in examples)
    assert report["trained_share"] == round(report["trained_tokens"] / report["tokens"], 4)
    assert [s["index"] for s in report["spans"]] == [0, 1]
    assert report["spans"][0]["trained_text"] == train[0]["messages"][1]["content"] + "<end_of_turn>"


def test_max_length_drops_long_row_with_reason(cli, small_dataset, capsys):
    folder, _ = small_dataset
    assert cli.main([str(folder), "--tokenizer", "tiny", "--json", "--max-length", "200"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(d["index"], d["id"], d["kind"]) for d in report["dropped"]] == [(1, "row-1", "too_long")]
    assert "max_length is 200" in report["dropped"][0]["reason"] and report["dropped"][0]["tokens"] > 200
    assert report["kept"] == 3 and [r["index"] for r in report["per_row"]] == [0, 2, 3]


def test_text_report(cli, small_dataset, capsys):
    folder, _ = small_dataset
    assert cli.main([str(folder), "--tokenizer", "tiny", "--rows", "1", "--max-length", "200", "--split", "all"]) == 0
    out = capsys.readouterr().out
    assert "--- row 0: trained span (decoded) ---\n<think>\nThe context says it." in out
    assert "0.5 months\n</answer><end_of_turn>" in out
    assert "dropped rows: 1" in out and "row 1 (row-1): too_long: reply would be cut" in out
    assert "totals: rows 5, kept 4, dropped 1;" in out


def test_invalid_row_is_one_line_error(cli, tmp_path, capsys):
    folder = tmp_path / "bad"
    folder.mkdir()
    bad = _row(0)
    bad["messages"][1]["content"] = bad["messages"][1]["content"].replace("months", "months<end_of_turn>", 1)
    (folder / "train.jsonl").write_text(json.dumps(_row(1)) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    (folder / "test.jsonl").write_text(json.dumps(_row(2)) + "\n", encoding="utf-8")
    assert cli.main([str(folder), "--tokenizer", "tiny"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "train row 1" in err


def test_missing_dataset_and_bad_tokenizer_subprocess(tmp_path, small_dataset):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    missing = subprocess.run(
        [sys.executable, SCRIPT, str(tmp_path / "nope.jsonl"), "--tokenizer", str(tmp_path)],
        capture_output=True, text=True, env=env,
    )
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: ") and missing.stderr.count("\n") == 1, missing.stderr
    folder, _ = small_dataset
    empty = tmp_path / "empty_tokenizer"
    empty.mkdir()
    bad_tok = subprocess.run(
        [sys.executable, SCRIPT, str(folder), "--tokenizer", str(empty)], capture_output=True, text=True, env=env
    )
    assert bad_tok.returncode == 2 and bad_tok.stderr.startswith(f"error: {empty}: cannot load tokenizer")
    assert bad_tok.stderr.count("\n") == 1 and "Traceback" not in bad_tok.stderr


def test_help_shows_example():
    out = subprocess.run([sys.executable, SCRIPT, "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "python scripts/inspect_masks.py data/dipg --tokenizer" in out.stdout
