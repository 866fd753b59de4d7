"""scripts/eval_simple.py: golden run, bad input, atomic output, --compare, --model end to end.

The golden metrics.json is regenerated only by ``python scripts/regen_golden_eval.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.eval_simple import main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "eval"
DATASET = FIXTURES / "dataset"
RESPONSES = FIXTURES / "responses.jsonl"
GOLDEN = ROOT / "tests" / "golden" / "eval" / "metrics.json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _run(*args) -> int:
    return main([*map(str, args), "--no-progress"])


def test_golden_run(tmp_path, capsys):
    out = tmp_path / "golden"
    assert _run("--responses", RESPONSES, "--dataset", DATASET, "--out", out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "report.md", "report.png", "results.jsonl"]
    assert json.loads((out / "metrics.json").read_text()) == json.loads(GOLDEN.read_text())
    # Stable key order: the file text itself is reproduced, not only its content.
    assert (out / "metrics.json").read_text() == GOLDEN.read_text()
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in results] == ["r1", "r2", "r3", "f1", "f2", "h1", "h2", "a1", "a2"]
    assert (out / "report.png").read_bytes()[:8] == PNG_SIGNATURE
    report = (out / "report.md").read_text()
    for heading in ("## Overall", "## By type", "## Strict-format failures", "## Gym rubric branch"):
        assert heading in report
    assert "gold replies (ceiling)" in report
    assert "9 rows: strict format 66.7%" in capsys.readouterr().out


def test_limit_and_rerun_is_identical(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert _run("--responses", RESPONSES, "--dataset", DATASET, "--out", a, "--limit", 3) == 0
    assert _run("--responses", RESPONSES, "--dataset", DATASET, "--out", b, "--limit", 3) == 0
    assert json.loads((a / "metrics.json").read_text())["n"] == 3
    for name in ("metrics.json", "results.jsonl"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def _md_tables(report: str) -> dict[str, list[list[str]]]:
    """report.md -> {section heading: table rows (header first, separator dropped) as lists of cells}."""
    tables: dict[str, list[list[str]]] = {}
    heading = None
    for line in report.splitlines():
        if line.startswith("## "):
            heading = line[3:]
        elif line.startswith("|") and not line.startswith("|---"):
            tables.setdefault(heading, []).append([cell.strip() for cell in line.strip("|").split("|")])
    return tables


def _pct(value) -> str:
    return f"{100 * value:.1f} %"


def test_compare(tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    assert _run("--responses", RESPONSES, "--dataset", DATASET, "--out", before, "--limit", 4) == 0
    assert _run("--responses", RESPONSES, "--dataset", DATASET, "--out", after, "--compare", before) == 0
    report = (after / "report.md").read_text()
    assert "| metric | after | before | gold replies (ceiling) |" in report
    assert "| reasoning | before |" in report and "| reasoning | after |" in report
    assert (after / "report.png").read_bytes()[:8] == PNG_SIGNATURE
    # The compared numbers: every column holds its own run's figures from that run's metrics.json.
    m_after = json.loads((after / "metrics.json").read_text())
    m_before = json.loads((before / "metrics.json").read_text())
    assert (m_after["n"], m_before["n"]) == (9, 4)
    assert "- rows evaluated: 9 (before: 4)" in report
    tables = _md_tables(report)
    overall = {row[0]: row[1:] for row in tables["Overall"][1:]}
    figures = {
        "strict format": lambda o: _pct(o["strict_format_rate"]),
        "lenient format (three blocks found)": lambda o: _pct(o["lenient_format_rate"]),
        "`<proof>` present": lambda o: _pct(o["tag_presence"]["proof"]),
        "proofs quoting the context verbatim": lambda o: _pct(o["proof_grounding_share"]),
        "gym mean reward": lambda o: f"{o['gym']['mean_reward']:.2f}",
        "gym safe rate": lambda o: _pct(o["gym"]["safe_rate"]),
        "gym hallucination rate": lambda o: _pct(o["gym"]["hallucination_rate"]),
        "gym consistency rate": lambda o: _pct(o["gym"]["consistency_rate"]),
    }
    for name, figure in figures.items():
        assert overall[name][:2] == [figure(m_after["overall"]), figure(m_before["overall"])], name
    # The two runs really differ on these rows, so a report showing one run twice cannot pass.
    assert [n for n, cells in overall.items() if n in figures and cells[0] != cells[1]] == [
        "strict format", "lenient format (three blocks found)", "`<proof>` present",
        "proofs quoting the context verbatim", "gym mean reward", "gym safe rate", "gym hallucination rate",
        "gym consistency rate"]
    by_type = {(row[0], row[1]): row[2:] for row in tables["By type"][1:]}
    expected = {}
    for label, m in (("after", m_after), ("before", m_before)):
        for t, g in m["by_type"].items():
            expected[(t, label)] = [str(g["n"]), _pct(g["strict_format_rate"]),
                                    f"{g['gym']['mean_reward']:.2f}", _pct(g["gym"]["safe_rate"])]
    assert {key: [cells[0], cells[1], cells[4], cells[5]] for key, cells in by_type.items()} == expected
    assert set(m_before["by_type"]) == {"reasoning", "refusal"}  # the other types have no "before" row
    a, b = m_after["overall"], m_before["overall"]
    failures = tables[next(h for h in tables if h.startswith("Strict-format"))][1:]
    assert {row[0]: row[1:] for row in failures} == {
        kind: [str(a["strict_failures"][kind]), str(b["strict_failures"][kind]),
               str(a["strict_failures_any"][kind]), str(b["strict_failures_any"][kind])]
        for kind in a["strict_failures"]}
    branches = {row[0]: row[1:3] for row in tables["Gym rubric branch that decided each row"][1:]}
    assert branches == {k: [str(a["gym"]["branches"][k]), str(b["gym"]["branches"][k])]
                        for k in a["gym"]["branches"]}


def _bad_responses(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.jsonl"
    path.write_text(text, encoding="utf-8")
    return path


def _train_only(tmp_path: Path) -> Path:
    folder = tmp_path / "train_only"
    folder.mkdir()
    shutil.copy(DATASET / "train.jsonl", folder / "train.jsonl")
    return folder


def _train_validation(tmp_path: Path) -> Path:
    import datasets

    rows = [json.loads(l) for l in (DATASET / "test.jsonl").read_text().splitlines()]
    folder = tmp_path / "train_validation"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows),
                          "validation": datasets.Dataset.from_list(rows)}).save_to_disk(str(folder))
    return folder


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda t: ("--responses", _bad_responses(t, '{"response": "x"}\n'), "--dataset", DATASET), "no 'id'"),
        (lambda t: ("--responses", _bad_responses(t, '{"id": "r1", "response": "x"}\n{"id": "r1", "response": "y"}\n'),
                    "--dataset", DATASET), "duplicate id 'r1'"),
        (lambda t: ("--responses", _bad_responses(t, '{"id": "nope", "response": "x"}\n'), "--dataset", DATASET),
         "id 'nope' is not in the dataset's test split"),
        (lambda t: ("--responses", _bad_responses(t, ""), "--dataset", DATASET), "responses file is empty"),
        (lambda t: ("--responses", _bad_responses(t, '{"id": "r1", "response": "x"}\n{oops\n'), "--dataset", DATASET),
         "line 2: not valid JSON"),
        (lambda t: ("--responses", t / "absent.jsonl", "--dataset", DATASET), "cannot read responses file"),
        (lambda t: ("--responses", RESPONSES, "--dataset", _train_only(t)), "train_only"),
        (lambda t: ("--responses", RESPONSES, "--dataset", _train_validation(t)), "test"),
        (lambda t: ("--responses", RESPONSES, "--dataset", DATASET, "--compare", t / "no-run"), "metrics.json"),
    ],
    ids=["missing-id", "duplicate-id", "unknown-id", "empty-file", "non-json", "absent-file", "no-test-split",
         "train-validation-only", "compare-missing"],
)
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, capsys, make, message):
    out = tmp_path / "out"
    args = make(tmp_path)
    capsys.readouterr()  # drop what building the fixture printed (datasets' progress bars)
    assert _run(*args, "--out", out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_existing_output_needs_force_and_survives_failure(tmp_path, capsys):
    out = tmp_path / "out"
    assert _run("--responses", RESPONSES, "--dataset", DATASET, "--out", out, "--limit", 2) == 0
    before = (out / "metrics.json").read_bytes()
    assert _run("--responses", RESPONSES, "--dataset", DATASET, "--out", out) == 2
    assert "already exists" in capsys.readouterr().err
    # A failing run with --force leaves the previous output untouched.
    bad = _bad_responses(tmp_path, "{oops\n")
    assert _run("--responses", bad, "--dataset", DATASET, "--out", out, "--force") == 2
    assert (out / "metrics.json").read_bytes() == before
    assert _run("--responses", RESPONSES, "--dataset", DATASET, "--out", out, "--force") == 0
    assert json.loads((out / "metrics.json").read_text())["n"] == 9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl", "out"]


def test_orbax_checkpoint_is_refused(tmp_path, capsys):
    ckpt = tmp_path / "ckpt" / "1"
    ckpt.mkdir(parents=True)
    (ckpt / "_CHECKPOINT_METADATA").write_text("{}")
    assert _run("--model", tmp_path / "ckpt", "--dataset", DATASET, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "Tunix/orbax checkpoints are not supported here" in err and not (tmp_path / "out").exists()


def test_cli_subprocess_no_traceback(tmp_path):
    """As a user runs it: one stderr line, exit 2, no traceback."""
    bad = _bad_responses(tmp_path, "not json\n")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "eval_simple.py"), "--responses", str(bad),
                           "--dataset", str(DATASET), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {bad} line 1: not valid JSON (Expecting value)"]
    help_text = subprocess.run([sys.executable, str(ROOT / "scripts" / "eval_simple.py"), "--help"],
                               capture_output=True, text=True).stdout
    assert "--compare" in help_text and "python scripts/eval_simple.py --model" in help_text


@pytest.mark.e2e
def test_model_end_to_end_on_tiny_model(tmp_path, tiny_model_dir):
    out = tmp_path / "tiny"
    code = _run("--model", tiny_model_dir, "--dataset", DATASET, "--out", out, "--limit", 4,
                "--max-new-tokens", 16, "--batch-size", 2, "--prefill-think")
    assert code == 0
    responses = [json.loads(line) for line in (out / "responses.jsonl").read_text().splitlines()]
    assert [r["id"] for r in responses] == ["r1", "r2", "r3", "f1"]
    assert all(r["response"].startswith("<think>\n") for r in responses)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 4 and metrics["overall"]["tag_presence"]["think"] == 1.0
    assert (out / "report.png").read_bytes()[:8] == PNG_SIGNATURE
    # The saved responses re-score to the same metrics through --responses.
    again = tmp_path / "again"
    assert _run("--responses", out / "responses.jsonl", "--dataset", DATASET, "--out", again) == 0
    assert (again / "metrics.json").read_text() == (out / "metrics.json").read_text()


@pytest.fixture
def generated_dtypes(monkeypatch) -> list[set]:
    """The dtypes of the weights each ``generate`` call of the run used, in order."""
    import adapters.generation as generation

    seen = []
    real_generate = generation.generate

    def spy(model, *args, **kwargs):
        seen.append({p.dtype for p in model.parameters()})
        return real_generate(model, *args, **kwargs)

    monkeypatch.setattr(generation, "generate", spy)
    return seen


@pytest.mark.e2e
def test_dtype_bfloat16_generates_with_bfloat16_weights(tmp_path, tiny_model_dir, generated_dtypes):
    import torch

    out = tmp_path / "bf16"
    assert _run("--model", tiny_model_dir, "--dataset", DATASET, "--out", out, "--limit", 2,
                "--max-new-tokens", 4, "--dtype", "bfloat16") == 0
    assert generated_dtypes == [{torch.bfloat16}]
    assert "- weights dtype: `bfloat16`" in (out / "report.md").read_text()
    assert _run("--model", tiny_model_dir, "--dataset", DATASET, "--out", tmp_path / "as-saved", "--limit", 2,
                "--max-new-tokens", 4) == 0
    assert generated_dtypes[1] == {torch.float32}
    assert "weights dtype" not in (tmp_path / "as-saved" / "report.md").read_text()


@pytest.mark.e2e
def test_saved_bfloat16_weights_run_as_float32_on_a_cpu_without_bf16_hardware(
        tmp_path, tiny_model_dir, generated_dtypes, monkeypatch):
    """The offline 270M is saved in bfloat16; on an AVX2-only CPU its generation in bfloat16 is 2.6x slower."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from adapters.generation import saved_dtype

    half = tmp_path / "tiny-bf16"
    AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.bfloat16).save_pretrained(half)
    AutoTokenizer.from_pretrained(str(tiny_model_dir)).save_pretrained(half)
    assert saved_dtype(half) == "bfloat16"
    for amx, out in ((False, tmp_path / "avx2"), (True, tmp_path / "amx")):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda amx=amx: amx, raising=False)
        assert _run("--model", half, "--dataset", DATASET, "--out", out, "--limit", 1, "--max-new-tokens", 4) == 0
    assert generated_dtypes == [{torch.float32}, {torch.bfloat16}]
    report = (tmp_path / "avx2" / "report.md").read_text()
    assert "- weights dtype: `float32 (saved as bfloat16; no bfloat16 hardware here)`" in report
    assert "weights dtype" not in (tmp_path / "amx" / "report.md").read_text()


def test_absent_model_folder(tmp_path, capsys):
    assert _run("--model", tmp_path / "nope", "--dataset", DATASET, "--out", tmp_path / "out") == 2
    assert "model folder not found" in capsys.readouterr().err


@pytest.mark.e2e
def test_model_lora_adapter_over_tiny_model(tmp_path, tiny_model_dir):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from adapters.chat import render_prompt
    from adapters.eval_run import load_test_rows
    from adapters.generation import generate

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    adapter = tmp_path / "adapter"
    # init_lora_weights=False: a non-zero adapter (the default B = 0 would change nothing).
    config = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "o_proj", "down_proj"],
                        init_lora_weights=False, task_type="CAUSAL_LM")
    peft_model = get_peft_model(base, config).eval()
    peft_model.save_pretrained(str(adapter))
    assert (adapter / "adapter_config.json").is_file()
    limit, new_tokens = 2, 8
    out = tmp_path / "lora"
    assert _run("--model", adapter, "--dataset", DATASET, "--out", out, "--limit", limit,
                "--max-new-tokens", new_tokens, "--batch-size", 1) == 0
    with_adapter = [json.loads(line)["response"]
                    for line in (out / "responses.jsonl").read_text().splitlines()]
    assert len(with_adapter) == limit and all(with_adapter)
    # The adapter is applied: the replies are the in-memory adapter model's, and differ from the base
    # model's on the same rows (greedy, so both are reproducible).
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    prompts = [render_prompt(row["messages"]) for row in load_test_rows(str(DATASET))[:limit]]
    assert with_adapter == generate(peft_model, tokenizer, prompts, max_new_tokens=new_tokens, batch_size=1)
    with peft_model.disable_adapter():
        without = generate(peft_model, tokenizer, prompts, max_new_tokens=new_tokens, batch_size=1)
    assert all(without) and all(a != b for a, b in zip(with_adapter, without)), (with_adapter, without)
    # metrics.json is that of the adapter's replies: re-scoring them gives the same file.
    again = tmp_path / "again"
    assert _run("--responses", out / "responses.jsonl", "--dataset", DATASET, "--out", again) == 0
    assert (again / "metrics.json").read_text() == (out / "metrics.json").read_text()
