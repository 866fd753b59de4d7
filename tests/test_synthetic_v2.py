"""The v2 offline DIPG generator (adapters/synthetic): determinism, validity, verbatim proofs, type mix,
declining only on missing/conflicting facts, FIELD_NOTES §7's length profile, and the gym's view of the golds."""

from __future__ import annotations

import re
import uuid
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters import synthetic
from adapters.dataset import ROW_TYPES, load_splits, row_issues
from adapters.dipg_profile import REAL, REAL_RANGES, is_bulleted, is_declining, is_numbered, paragraphs, profile
from adapters.dsa_format import parse_strict
from adapters.errors import DSAError
from adapters.synthetic_dipg import SOURCE as V1_SOURCE
from adapters.synthetic_dipg import TIMESTAMP, rows_to_jsonl, split_user_content

QUOTE_LINE_RE = re.compile(r'^- "([^"]+)"$')
NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")
DECLINING_TYPES = ("refusal", "anti_knowledge")


@pytest.fixture(scope="module")
def rows():
    return synthetic.generate_rows(1500, 42)


def _parts(row):
    context, question = split_user_content(row["messages"][0]["content"])
    return context, question, parse_strict(row["messages"][1]["content"])


def _quotes(proof: str) -> list[str]:
    quotes = []
    for line in proof.splitlines():
        match = QUOTE_LINE_RE.match(line)
        assert match, f"proof line is not - \"…\": {line!r}"
        quotes.append(match.group(1))
    return quotes


def _whole_sentence(quote: str, context: str) -> bool:
    """``quote`` sits in ``context`` as a whole sentence: it starts a paragraph or follows '. ', ends with '.'."""
    start = context.index(quote)
    before, after = context[:start], context[start + len(quote):]
    starts = start == 0 or before.endswith("\n\n") or before.endswith(". ")
    return starts and quote.endswith(".") and (after == "" or after[0] in " \n")


# --- determinism and validity ----------------------------------------------------------------

def test_same_seed_same_bytes_other_seed_other_rows(rows):
    assert rows_to_jsonl(synthetic.generate_rows(1500, 42)).encode() == rows_to_jsonl(rows).encode()
    other = synthetic.generate_rows(1500, 43)
    assert rows_to_jsonl(other) != rows_to_jsonl(rows)
    assert {r["metadata"]["id"] for r in other}.isdisjoint({r["metadata"]["id"] for r in rows})


def test_the_dataset_validator_accepts_every_row_and_splits_1400_100(rows, tmp_path):
    assert [i for i, row in enumerate(rows) if row_issues(row)] == []
    path = tmp_path / "v2.jsonl"
    path.write_text(rows_to_jsonl(rows), encoding="utf-8")
    dd = load_splits(path)
    assert (len(dd["train"]), len(dd["test"])) == (1400, 100)


def test_metadata_is_marked_synthetic_v2(rows):
    ids = [row["metadata"]["id"] for row in rows]
    assert len(set(ids)) == len(ids)
    for row in rows:
        meta = row["metadata"]
        assert "synthetic" in meta["source"] and "v2" in meta["source"] and meta["source"] != V1_SOURCE
        assert meta["timestamp"] == TIMESTAMP
        assert uuid.UUID(meta["id"]).version == 4


def test_contexts_are_unique(rows):
    assert len({_parts(row)[0] for row in rows}) == len(rows)


def test_units_and_articles_are_written_right(rows):
    text = rows_to_jsonl(rows)
    assert "µL" in text and "µl" not in text  # str.capitalize() would lower the unit
    assert not re.search(r"\ba (8|11|18)\b|\ba 8\d\b|\bA (8|11|18)-year", text)


# --- proofs ------------------------------------------------------------------------------------

def test_every_proof_quotes_whole_context_sentences_verbatim(rows):
    for row in rows:
        context, _, reply = _parts(row)
        quotes = _quotes(reply.proof)
        assert quotes and len(quotes) == len(set(quotes))
        for quote in quotes:
            assert quote in context, (row["metadata"]["id"], quote)
            assert _whole_sentence(quote, context), (row["metadata"]["id"], quote)
        # Quoted in reading order.
        assert [context.index(q) for q in quotes] == sorted(context.index(q) for q in quotes)


def test_numbers_in_answers_come_from_the_proof_or_the_think(rows):
    for row in rows:
        _, _, reply = _parts(row)
        for number in NUMBER_RE.findall(reply.answer):
            assert number in reply.proof or number in reply.think, (reply.answer, reply.think)


# --- type mix and think styles ------------------------------------------------------------------

def test_default_mix_is_upstream(rows):
    assert Counter(r["metadata"]["type"] for r in rows) == {"reasoning": 600, "refusal": 300, "haystack": 300, "anti_knowledge": 300}


def test_a_configured_mix_is_honoured():
    mix = synthetic.parse_mix("reasoning=0.7,haystack=0.3")
    rows = synthetic.generate_rows(200, 5, mix=mix)
    assert Counter(r["metadata"]["type"] for r in rows) == {"reasoning": 140, "haystack": 60}


@given(n=st.integers(1, 3000), weights=st.lists(st.integers(0, 9), min_size=4, max_size=4).filter(any))
def test_type_counts_sum_to_n_and_follow_the_shares(n, weights):
    mix = dict(zip(ROW_TYPES, weights))
    counts = synthetic.type_counts(n, mix)
    assert sum(counts.values()) == n
    for name in ROW_TYPES:
        assert abs(counts[name] - n * mix[name] / sum(weights)) < 1, (counts, mix)


@pytest.mark.parametrize("text", ["reasoning", "bogus=1", "reasoning=-1", "reasoning=x", "reasoning=0", "reasoning=nan"])
def test_bad_mixes_are_one_line_errors(text):
    with pytest.raises(DSAError) as info:
        synthetic.parse_mix(text)
    assert "\n" not in str(info.value) and str(info.value).startswith("--mix")


def test_numbered_think_share(rows):
    share = sum(is_numbered(_parts(r)[2].think) for r in rows) / len(rows)
    assert 0.35 <= share <= 0.45
    assert not any(is_numbered(_parts(r)[2].think) for r in synthetic.generate_rows(60, 1, numbered=0.0))
    assert all(is_numbered(_parts(r)[2].think) for r in synthetic.generate_rows(60, 1, numbered=1.0))


# --- declining only when facts are missing or conflicting ----------------------------------------

def test_answers_decline_exactly_on_refusal_and_off_topic_rows(rows):
    for row in rows:
        declines = is_declining(_parts(row)[2].answer)
        assert declines == (row["metadata"]["type"] in DECLINING_TYPES), (row["metadata"]["type"], _parts(row)[2].answer)


def test_refusals_are_half_missing_half_really_conflicting(rows):
    kinds = Counter()
    for row in (r for r in rows if r["metadata"]["type"] == "refusal"):
        context, _, reply = _parts(row)
        assert "conflicting" not in context.lower()
        if "conflicting" in reply.answer:
            kinds["conflict"] += 1
            # Both sides of the contradiction are quoted from the context.
            assert len(_quotes(reply.proof)) >= 2
        else:
            kinds["missing"] += 1
            assert "does not contain" in reply.answer or "does not provide" in reply.answer
    assert kinds == {"conflict": 150, "missing": 150}


def test_answering_golds_carry_no_decline_or_conflict_cue_for_the_gym(rows):
    """The gym reads abstention/conflict cues anywhere in the gold: answering golds must have none."""
    from med_safety_eval import logic
    for row in rows:
        gold = row["messages"][1]["content"]
        if row["metadata"]["type"] in DECLINING_TYPES:
            assert logic._is_abstention(parse_strict(gold).answer) or "conflicting" in gold
        else:
            assert not logic._is_abstention(gold) and "conflicting" not in gold.lower(), gold
            assert not logic.is_refusal(parse_strict(gold).answer)


def test_the_gym_scores_every_gold_at_the_top_of_its_branch(rows):
    """Reasoning and haystack golds: "answer correct" (50); declines: correct abstention/conflict (30)."""
    from adapters.gym_scorer import GymScorer, ground_truth_from_row

    scorer = GymScorer()
    expected = {"reasoning": ({"answer_correct"}, 50.0), "haystack": ({"answer_correct"}, 50.0),
                "refusal": ({"abstention_correct", "conflict_correct"}, 30.0),
                "anti_knowledge": ({"abstention_correct"}, 30.0)}
    for row in rows:
        truth = ground_truth_from_row(row)
        score = scorer.score(truth.gold, truth)
        branches, reward = expected[row["metadata"]["type"]]
        assert score.branch in branches and score.reward == reward, (row["metadata"], score.branch, score.reward)
        assert score.safe and not score.hallucination


# --- row shapes -----------------------------------------------------------------------------------

def test_haystack_rows_hide_one_needle_in_paragraphs(rows):
    for row in (r for r in rows if r["metadata"]["type"] == "haystack"):
        context, question, reply = _parts(row)
        nct = re.search(r"NCT\d{8}", question).group(0)
        (needle,) = _quotes(reply.proof)
        assert nct in needle and context.count(nct) == 1
        assert 3 <= paragraphs(context) <= 6
        assert 25 <= len(re.findall(r"\.(?:\s|$)", context)) <= 30 + 5  # statements (a few carry decimals)


def test_reasoning_rows_are_multi_paragraph_vignettes_or_literature(rows):
    blocks = Counter(paragraphs(_parts(r)[0]) for r in rows if r["metadata"]["type"] == "reasoning")
    assert sum(v for k, v in blocks.items() if k >= 3) >= 0.6 * sum(blocks.values())
    assert blocks[1] + blocks[2] > 0  # short literature-style contexts too


def test_profile_sits_in_field_notes_ranges(rows):
    prof = profile(rows)
    for field in ("context", "question", "think", "proof"):
        low, high = REAL_RANGES[field]
        spread = prof["chars"][field]
        assert low <= spread["min"] and spread["max"] <= high, (field, spread)
    low, high = REAL_RANGES["paragraphs"]
    assert low <= prof["paragraphs"]["min"] and prof["paragraphs"]["max"] <= high
    assert abs(prof["chars"]["context"]["median"] - REAL["context"][1]) <= 0.1 * REAL["context"][1]
    assert abs(prof["chars"]["answer"]["median"] - REAL["answer"][1]) <= 0.25 * REAL["answer"][1]
    assert abs(prof["declining"] - REAL["declining"]) <= 0.02
    assert prof["bulleted_proof"] == 1.0 and prof["verbatim_proof"] == 1.0 and prof["unparsed"] == 0


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 40), seed=st.integers(0, 2**32), numbered=st.sampled_from([0.0, 0.4, 1.0]))
def test_any_seed_gives_valid_deterministic_rows_within_the_ranges(n, seed, numbered):
    rows = synthetic.generate_rows(n, seed, numbered=numbered)
    assert rows_to_jsonl(synthetic.generate_rows(n, seed, numbered=numbered)) == rows_to_jsonl(rows)
    assert Counter(r["metadata"]["type"] for r in rows) == {k: v for k, v in synthetic.type_counts(n).items() if v}
    for row in rows:
        assert not row_issues(row)
        context, question, reply = _parts(row)
        for quote in _quotes(reply.proof):
            assert quote in context
        assert is_bulleted(reply.proof)
        for field, text in (("context", context), ("question", question), ("think", reply.think), ("proof", reply.proof)):
            low, high = REAL_RANGES[field]
            assert low <= len(text) <= high, (field, len(text))
        assert REAL_RANGES["paragraphs"][0] <= paragraphs(context) <= REAL_RANGES["paragraphs"][1]


def test_bad_arguments():
    with pytest.raises(ValueError):
        synthetic.generate_rows(0, 1)
    with pytest.raises(ValueError):
        synthetic.generate_rows(5, 1, numbered=1.5)
