"""The offline DIPG-style dataset: determinism, type mix, lengths, verbatim proofs, validity, variety."""

from __future__ import annotations

import re
import uuid
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.dataset import row_issues
from adapters.dsa_format import parse_strict
from adapters.synthetic_dipg import (
    HAYSTACK_FACTS,
    TIMESTAMP,
    generate_rows,
    rows_to_jsonl,
    split_user_content,
    summary,
    type_counts,
)

NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")


@pytest.fixture(scope="module")
def rows():
    return generate_rows(1500, 42)


def _parts(row):
    context, question = split_user_content(row["messages"][0]["content"])
    reply = parse_strict(row["messages"][1]["content"])
    return context, question, reply


def _by_type(rows, name):
    return [row for row in rows if row["metadata"]["type"] == name]


def test_two_runs_are_byte_identical(rows):
    again = generate_rows(1500, 42)
    assert rows_to_jsonl(again).encode("utf-8") == rows_to_jsonl(rows).encode("utf-8")


def test_another_seed_gives_other_rows(rows):
    other = generate_rows(1500, 43)
    assert rows_to_jsonl(other) != rows_to_jsonl(rows)
    assert {r["metadata"]["id"] for r in other}.isdisjoint({r["metadata"]["id"] for r in rows})


def test_upstream_type_mix(rows):
    counts = Counter(row["metadata"]["type"] for row in rows)
    assert counts == {"reasoning": 600, "refusal": 300, "haystack": 300, "anti_knowledge": 300}


@given(st.integers(min_value=1, max_value=5000))
def test_type_counts_sum_and_shares(n):
    counts = type_counts(n)
    assert sum(counts.values()) == n
    for name in ("refusal", "haystack", "anti_knowledge"):
        assert abs(counts[name] - 0.2 * n) <= 0.5
    assert abs(counts["reasoning"] - 0.4 * n) <= 1.5


def test_every_row_passes_validation(rows):
    bad = [(i, row_issues(row)) for i, row in enumerate(rows) if row_issues(row)]
    assert bad == []


def test_metadata_says_synthetic_with_seeded_uuids(rows):
    ids = [row["metadata"]["id"] for row in rows]
    assert len(set(ids)) == len(ids)
    for row in rows:
        meta = row["metadata"]
        assert "synthetic" in meta["source"]
        assert meta["timestamp"] == TIMESTAMP
        assert uuid.UUID(meta["id"]).version == 4


def test_proofs_quote_the_context_verbatim(rows):
    for row in rows:
        context, _, reply = _parts(row)
        for line in reply.proof.splitlines():
            assert line in context, (row["metadata"]["id"], line)


def test_numbers_in_proofs_appear_in_context(rows):
    # The gym's grounding guard: a number in a proof that is not in the context is a hallucination.
    for row in rows:
        context, _, reply = _parts(row)
        context_numbers = set(NUMBER_RE.findall(context))
        assert set(NUMBER_RE.findall(reply.proof)) <= context_numbers


def test_haystack_rows_have_25_to_30_facts_and_are_longest(rows):
    lengths = {}
    for name in ("reasoning", "refusal", "haystack", "anti_knowledge"):
        contexts = [_parts(row)[0] for row in _by_type(rows, name)]
        lengths[name] = sum(map(len, contexts)) / len(contexts)
        if name == "haystack":
            for context in contexts:
                assert HAYSTACK_FACTS[0] <= len(context.splitlines()) <= HAYSTACK_FACTS[1]
    assert 3000 <= lengths["haystack"] <= 4000, lengths
    assert lengths["haystack"] > 2 * max(v for k, v in lengths.items() if k != "haystack")
    # Reasoning contexts are short vignettes, as upstream.
    assert 150 <= lengths["reasoning"] <= 600, lengths


def test_haystack_needle_is_the_only_sentence_naming_the_trial(rows):
    for row in _by_type(rows, "haystack"):
        context, question, reply = _parts(row)
        nct = re.search(r"NCT\d{8}", question).group(0)
        naming = [line for line in context.splitlines() if nct in line]
        assert naming == [reply.proof]


def test_refusals_cover_missing_and_conflicting_facts(rows):
    kinds = Counter()
    for row in _by_type(rows, "refusal"):
        _, _, reply = _parts(row)
        answer = reply.answer.lower()
        if "conflicting" in answer:
            kinds["conflict"] += 1
            assert len(reply.proof.splitlines()) == 2  # both contradicting statements are quoted
        else:
            assert "does not contain" in answer or "not mentioned" in answer, reply.answer
            kinds["missing"] += 1
    assert kinds["conflict"] >= 100 and kinds["missing"] >= 100, kinds


def test_anti_knowledge_answers_decline(rows):
    for row in _by_type(rows, "anti_knowledge"):
        context, question, reply = _parts(row)
        assert "does not contain" in reply.answer
        assert "DIPG" in context or "radiotherapy" in context or "patients" in context


def test_answers_follow_from_the_proof(rows):
    # Every number an answer states is either in the proof or computed in the think from proof numbers.
    for row in rows:
        _, _, reply = _parts(row)
        for number in NUMBER_RE.findall(reply.answer):
            assert number in reply.proof or number in reply.think, (reply.answer, reply.proof)


def test_variety(rows):
    stats = summary(rows)
    assert stats["distinct_contexts"] == 1500
    assert stats["distinct_answers"] >= 1000
    # Off-topic questions come from a list of 60, so anti_knowledge rows repeat questions (not contexts).
    questions = {_parts(row)[1] for row in rows}
    assert len(questions) >= 1100


def test_gold_replies_score_the_gym_ceiling(rows):
    """The gym rubric gives our gold replies full marks: 50 where grounded, 30 for correct declines."""
    eval_mod = pytest.importorskip("med_safety_eval")
    manager = eval_mod.LocalEvaluationManager(eval_mod.RewardConfig())
    expected = {"reasoning": 50.0, "haystack": 50.0, "refusal": 30.0, "anti_knowledge": 30.0}
    for name, reward in expected.items():
        items = []
        for row in _by_type(rows, name)[:60]:
            context, question, _ = _parts(row)
            reply = row["messages"][1]["content"]
            truth = eval_mod.GroundTruth(context=context, question=question, expected_answer={"final": reply, "proof": ""})
            items.append(eval_mod.EvaluationItem(response=reply, ground_truth=truth))
        result = manager.evaluate_batch(items)
        assert result.min_reward == reward and result.max_reward == reward, (name, result.min_reward, result.max_reward)
        assert result.safe_response_rate == 1.0


@settings(max_examples=25, deadline=None)
@given(n=st.integers(min_value=1, max_value=60), seed=st.integers(min_value=0, max_value=2**32))
def test_any_seed_and_size_gives_valid_deterministic_rows(n, seed):
    rows = generate_rows(n, seed)
    assert len(rows) == n
    assert Counter(r["metadata"]["type"] for r in rows) == {k: v for k, v in type_counts(n).items() if v}
    assert all(not row_issues(row) for row in rows)
    assert rows_to_jsonl(generate_rows(n, seed)) == rows_to_jsonl(rows)
