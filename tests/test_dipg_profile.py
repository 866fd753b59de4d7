"""The DIPG length/structure profile (adapters/dipg_profile.py) and its CLI (scripts/profile_dipg.py),
plus make_dipg_dataset.py's --generator/--mix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import synthetic
from adapters.dipg_profile import (
    REAL,
    is_bulleted,
    is_declining,
    is_numbered,
    is_verbatim,
    markdown_table,
    paragraphs,
    profile,
    quoted_spans,
)
from adapters.dsa_format import render_reply
from adapters.synthetic_dipg import generate_rows as generate_v1
from adapters.synthetic_dipg import rows_to_jsonl, user_content

ROOT = Path(__file__).resolve().parent.parent
PROFILE = ROOT / "scripts" / "profile_dipg.py"
MAKE = ROOT / "scripts" / "make_dipg_dataset.py"


def run(script: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=300)


def row(context: str, question: str, think: str, proof: str, answer: str, row_type: str = "reasoning") -> dict:
    return {
        "messages": [{"role": "user", "content": user_content(context, question)},
                     {"role": "assistant", "content": render_reply(think, proof, answer)}],
        "metadata": {"id": "x", "type": row_type, "source": "test", "timestamp": "t"},
    }


# --- the measures, one by one -------------------------------------------------------------------

def test_paragraphs_count_blank_line_separated_blocks():
    assert paragraphs("one") == 1
    assert paragraphs("one\ntwo") == 1
    assert paragraphs("one\n\ntwo\n \n\nthree\n\n") == 3


@given(st.lists(st.text(alphabet="abc .,", min_size=1).filter(str.strip), min_size=1, max_size=8))
def test_paragraphs_inverts_joining_with_blank_lines(blocks):
    assert paragraphs("\n\n".join(blocks)) == len(blocks)


def test_numbered_thinks_need_two_numbered_lines():
    assert is_numbered("1. a\n2. b")
    assert is_numbered("Plan:\n1) a\n2) b\nso c")
    assert not is_numbered("1. only one step")
    assert not is_numbered("In 2024 a trial. 3 patients.")


def test_bulleted_and_verbatim_proofs():
    context = 'The dose was 60 mg/m2. MRI showed a lesion.'
    assert is_bulleted('- "The dose was 60 mg/m2."\n- "MRI showed a lesion."')
    assert is_verbatim('- "The dose was 60 mg/m2."\n- "MRI showed a lesion."', context)
    assert quoted_spans('* \u201cMRI showed a lesion.\u201d') == ["MRI showed a lesion."]
    assert not is_bulleted('The dose was 60 mg/m2.\n- "MRI showed a lesion."')
    assert not is_verbatim('- "The dose was 50 mg/m2."', context)
    assert not is_verbatim("", context)


def test_declining_answers():
    assert is_declining("The provided text does not contain that information.")
    assert is_declining("The context is conflicting (4 and 5 months).")
    assert not is_declining("14.5 months")
    assert not is_declining("He does not meet the enrolment criteria: age 19 is outside 3 to 18 years.")


def test_profile_counts_exact_figures():
    rows = [
        row("C" * 500, "Q" * 40, "1. a\n2. b", '- "' + "C" * 10 + '"', "A" * 100),
        row("C" * 1000 + "\n\nD", "Q" * 60, "prose", "C" * 20, "The text does not contain it.", "refusal"),
        {"messages": [{"role": "user", "content": user_content("E" * 700, "Q" * 50)},
                      {"role": "assistant", "content": "no tags"}], "metadata": {"type": "haystack"}},
    ]
    prof = profile(rows)
    assert prof["rows"] == 3 and prof["unparsed"] == 1
    assert prof["chars"]["context"] == {"min": 500, "median": 700, "max": 1003}
    assert prof["chars"]["question"] == {"min": 40, "median": 50, "max": 60}
    assert prof["chars"]["answer"] == {"min": 29, "median": 64.5, "max": 100}
    assert prof["paragraphs"] == {"min": 1, "median": 1, "max": 2}
    assert prof["numbered_think"] == prof["bulleted_proof"] == prof["declining"] == 0.5
    assert prof["verbatim_proof"] == 1.0 and prof["elided_proof"] == 0.0
    assert prof["types"] == {"reasoning": 1 / 3, "refusal": 1 / 3, "haystack": 1 / 3}


def test_markdown_table_puts_profiles_and_the_real_figures_side_by_side():
    table = markdown_table({"v1": profile(generate_v1(50, 1)), "real": REAL})
    lines = table.splitlines()
    assert lines[0] == "| | v1 | real |"
    context_line = next(line for line in lines if line.startswith("| context chars"))
    assert context_line.endswith("| 445 / 1,556 / 3,891 |")
    assert "| 40 % |" in next(line for line in lines if line.startswith("| think as numbered"))
    assert all(line.count("|") == 4 for line in lines)


# --- scripts/profile_dipg.py ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("profile")
    v1, v2 = folder / "v1.jsonl", folder / "v2.jsonl"
    v1.write_text(rows_to_jsonl(generate_v1(200, 3)), encoding="utf-8")
    v2.write_text(rows_to_jsonl(synthetic.generate_rows(200, 3)), encoding="utf-8")
    return v1, v2


def test_profile_cli_table_markdown_and_json(two_files, tmp_path):
    v1, v2 = two_files
    out = tmp_path / "profile.md"
    result = run(PROFILE, f"v1={v1}", f"v2={v2}", "--real", "--markdown", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout == out.read_text(encoding="utf-8")
    assert result.stdout.splitlines()[0] == "| | v1 | v2 | real rows (FIELD_NOTES §7) |"
    as_json = json.loads(run(PROFILE, f"v2={v2}", "--json").stdout)
    assert as_json["v2"] == json.loads(json.dumps(profile(synthetic.generate_rows(200, 3))))
    assert as_json["v2"]["rows"] == 200


def test_profile_cli_bad_input_is_one_line_exit_2(tmp_path):
    result = run(PROFILE, tmp_path / "missing.jsonl")
    assert result.returncode == 2 and result.stderr.startswith("error:") and len(result.stderr.splitlines()) == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"x": 1}\n')
    result = run(PROFILE, bad)
    assert result.returncode == 2 and "messages" in result.stderr


# --- make_dipg_dataset.py --generator / --mix ---------------------------------------------------------

def test_make_dataset_default_stays_v1_and_v2_is_selectable(tmp_path):
    default, v1, v2 = tmp_path / "d.jsonl", tmp_path / "v1.jsonl", tmp_path / "v2.jsonl"
    assert run(MAKE, "--out", default, "--rows", 120, "--seed", 9).returncode == 0
    assert run(MAKE, "--out", v1, "--rows", 120, "--seed", 9, "--generator", "v1").returncode == 0
    result = run(MAKE, "--out", v2, "--rows", 120, "--seed", 9, "--generator", "v2", "--mix", "reasoning=3,haystack=1")
    assert result.returncode == 0, result.stderr
    assert default.read_bytes() == v1.read_bytes() == rows_to_jsonl(generate_v1(120, 9)).encode("utf-8")
    mix = synthetic.parse_mix("reasoning=3,haystack=1")
    assert v2.read_bytes() == rows_to_jsonl(synthetic.generate_rows(120, 9, mix=mix)).encode("utf-8")
    assert "generator v2" in result.stdout and "reasoning 90" in result.stdout and "haystack 30" in result.stdout
    assert "v1" in run(MAKE, "--help").stdout and "default" in run(MAKE, "--help").stdout


@pytest.mark.parametrize("args", [["--mix", "reasoning=1"], ["--generator", "v2", "--mix", "nope=1"],
                                  ["--generator", "v2", "--mix", "reasoning=0"]])
def test_make_dataset_bad_mix_is_one_line_exit_2(tmp_path, args):
    result = run(MAKE, "--out", tmp_path / "rows.jsonl", "--rows", 10, *args)
    assert result.returncode == 2 and result.stderr.startswith("error: --mix") and len(result.stderr.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


# --- evaluation.gold_ceiling -----------------------------------------------------------------------

def test_gold_ceiling_matches_summarise_gold_block():
    from adapters.evaluation import evaluate_rows, gold_ceiling, summarise

    rows = synthetic.generate_rows(40, 11)
    ceiling = gold_ceiling(rows)
    summary = summarise(evaluate_rows(rows, [(i, r["messages"][1]["content"]) for i, r in enumerate(rows)]))
    assert ceiling["n"] == 40
    assert ceiling["overall"] == summary["gold"]["overall"]
    assert ceiling["by_type"] == summary["gold"]["by_type"]
    assert ceiling["by_type"]["reasoning"]["mean_reward"] == 50.0
    off_topic = sum(1 for r in rows if r["metadata"]["type"] == "anti_knowledge")
    assert ceiling["by_type"]["anti_knowledge"]["branches"]["abstention_correct"] == off_topic == 8


# --- benchmarks/dipg_profile.py ----------------------------------------------------------------------

def test_profile_benchmark_report(tmp_path, tiny_model_dir):
    out = tmp_path / "report.md"
    result = run(ROOT / "benchmarks" / "dipg_profile.py", "--rows", 60, "--seed", 4, "--tokenizer", tiny_model_dir, "--markdown", out)
    assert result.returncode == 0, result.stderr
    report = out.read_text(encoding="utf-8")
    assert report == result.stdout
    # 24/12/12/12 rows: 24 x 50 + 12 x 50 + 24 x 30 = 2520 -> mean 42.00 for both generators' golds.
    assert "| mean reward | 42.00 | 42.00 | 21.11 |" in report
    assert "| reasoning rows: branch answer_correct | 24 of 24 | 24 of 24 | – |" in report
    import importlib.util

    from transformers import AutoTokenizer

    spec = importlib.util.spec_from_file_location("dipg_profile_bench", ROOT / "benchmarks" / "dipg_profile.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    lengths = bench.token_lengths(synthetic.generate_rows(60, 4), AutoTokenizer.from_pretrained(str(tiny_model_dir)))
    longest = max(max(v) for v in lengths.values())
    assert sum(len(v) for v in lengths.values()) == 60
    assert f"/ {longest:,} |" in next(line for line in report.splitlines() if line.startswith("| all rows"))
