"""The dual-stream format: rendering, the strict parser (hand-written cases), the lenient parser."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.dsa_format import (
    DUPLICATED,
    EMPTY,
    LEADING_TEXT,
    MISSING_TAG,
    STRAY_TEXT,
    TRAILING_TEXT,
    UNCLOSED,
    WRONG_ORDER,
    parse_lenient,
    parse_strict,
    render_reply,
    restore_prefilled_think,
)

GOOD = "<think>\nThe context gives 14.5 months.\n</think>\n\n<proof>\n\"median OS 14.5 months\"\n</proof>\n\n<answer>\n14.5 months\n</answer>"

# (reply, expected primary kind or None for ok, expected set of kinds)
CASES = [
    # --- well-formed ---
    (GOOD, None, set()),
    (GOOD + "<end_of_turn>", None, set()),
    (GOOD + "\n<end_of_turn>\n", None, set()),
    (GOOD + "<end_of_turn><eos>", None, set()),
    (GOOD + "<eos>", None, set()),
    (GOOD + "<|im_end|>\n", None, set()),  # ChatML end of turn
    (GOOD + "<|im_end|><|endoftext|>", None, set()),
    (GOOD + "<|eot_id|>", None, set()),  # Llama 3
    (GOOD + "\n<|eot_id|><|end_of_text|>", None, set()),
    ("<think>a</think><proof>b</proof><answer>c</answer>", None, set()),
    ("  \n<think>a</think>\n<proof>b</proof>\n<answer>c</answer>\n\n", None, set()),
    ("<think>a < b</think><proof>\"x > y\"</proof><answer>yes</answer>", None, set()),
    ("<think>multi\nline\nthink</think>\n\n<proof>p1\np2</proof>\n\n<answer>The text does not contain that information.</answer>", None, set()),
    ("<think>\t t \t</think><proof>p</proof><answer>a</answer>", None, set()),
    # --- missing tags ---
    ("<proof>b</proof><answer>c</answer>", MISSING_TAG, {MISSING_TAG}),
    ("<think>a</think><answer>c</answer>", MISSING_TAG, {MISSING_TAG}),
    ("<think>a</think><proof>b</proof>", MISSING_TAG, {MISSING_TAG}),
    ("just an answer with no tags", MISSING_TAG, {MISSING_TAG}),
    ("", MISSING_TAG, {MISSING_TAG}),
    ("a</think><proof>b</proof><answer>c</answer>", MISSING_TAG, {MISSING_TAG}),
    ("<answer>c</answer>", MISSING_TAG, {MISSING_TAG}),
    ("<reasoning>a</reasoning><proof>b</proof><answer>c</answer>", MISSING_TAG, {MISSING_TAG}),
    ("<think>a</think><proof>b</proof>c</answer>", MISSING_TAG, {MISSING_TAG}),
    # --- unclosed ---
    ("<think>a<proof>b</proof><answer>c</answer>", UNCLOSED, {UNCLOSED}),
    ("<think>a</think><proof>b<answer>c</answer>", UNCLOSED, {UNCLOSED}),
    ("<think>a</think><proof>b</proof><answer>c", UNCLOSED, {UNCLOSED}),
    ("<think>a</think><proof>b</proof><answer>c<end_of_turn>", UNCLOSED, {UNCLOSED}),
    ("<think>looping looping looping", UNCLOSED, {UNCLOSED, MISSING_TAG}),
    # --- wrong order ---
    ("<proof>b</proof><think>a</think><answer>c</answer>", WRONG_ORDER, {WRONG_ORDER}),
    ("<think>a</think><answer>c</answer><proof>b</proof>", WRONG_ORDER, {WRONG_ORDER}),
    ("<answer>c</answer><proof>b</proof><think>a</think>", WRONG_ORDER, {WRONG_ORDER}),
    ("<think>a<proof>b</proof></think><answer>c</answer>", WRONG_ORDER, {WRONG_ORDER}),
    ("</think>a<think><proof>b</proof><answer>c</answer>", WRONG_ORDER, {WRONG_ORDER}),
    ("<think>a</think><proof>b<answer>c</answer></proof>", WRONG_ORDER, {WRONG_ORDER}),
    # --- empty ---
    ("<think></think><proof>b</proof><answer>c</answer>", EMPTY, {EMPTY}),
    ("<think>a</think><proof>  \n </proof><answer>c</answer>", EMPTY, {EMPTY}),
    ("<think>a</think><proof>b</proof><answer>\n</answer>", EMPTY, {EMPTY}),
    ("<think> </think><proof></proof><answer></answer>", EMPTY, {EMPTY}),
    # --- duplicated ---
    ("<think>a</think><think>a</think><proof>b</proof><answer>c</answer>", DUPLICATED, {DUPLICATED}),
    ("<think>a</think><proof>b</proof><proof>b</proof><answer>c</answer>", DUPLICATED, {DUPLICATED}),
    ("<think>a</think><proof>b</proof><answer>c</answer><answer>c</answer>", DUPLICATED, {DUPLICATED}),
    ("<think>a</think></think><proof>b</proof><answer>c</answer>", DUPLICATED, {DUPLICATED}),
    (GOOD + "\n" + GOOD, DUPLICATED, {DUPLICATED}),
    # --- trailing text ---
    (GOOD + " and more", TRAILING_TEXT, {TRAILING_TEXT}),
    (GOOD + "<end_of_turn>\n<start_of_turn>user\nnext", TRAILING_TEXT, {TRAILING_TEXT}),
    (GOOD + "\n\nI hope this helps!", TRAILING_TEXT, {TRAILING_TEXT}),
    (GOOD + "<eos>garbage", TRAILING_TEXT, {TRAILING_TEXT}),
    (GOOD + "<|im_end|>\n<|im_start|>user\nnext", TRAILING_TEXT, {TRAILING_TEXT}),
    (GOOD + "<|eot_id|><|start_header_id|>user<|end_header_id|>", TRAILING_TEXT, {TRAILING_TEXT}),
    # --- leading / stray text ---
    ("Sure! <think>a</think><proof>b</proof><answer>c</answer>", LEADING_TEXT, {LEADING_TEXT}),
    ("<think>a</think> so <proof>b</proof><answer>c</answer>", STRAY_TEXT, {STRAY_TEXT}),
    ("<think>a</think><proof>b</proof>\nTherefore:\n<answer>c</answer>", STRAY_TEXT, {STRAY_TEXT}),
    # --- several problems at once are all reported ---
    ("<think></think><proof>b</proof><answer>c</answer> tail", EMPTY, {EMPTY, TRAILING_TEXT}),
    ("x<think>a</think>y<proof>b</proof>z<answer>c</answer>w", LEADING_TEXT, {LEADING_TEXT, STRAY_TEXT, TRAILING_TEXT}),
]


def test_there_are_at_least_forty_hand_written_cases():
    assert len(CASES) >= 40


@pytest.mark.parametrize("reply,primary,kinds", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_strict_parser(reply, primary, kinds):
    result = parse_strict(reply)
    assert result.ok is (primary is None), result.describe()
    assert result.primary_kind == primary
    assert {issue.kind for issue in result.errors} == kinds
    if result.ok:
        assert result.think and result.proof and result.answer
    else:
        assert result.think is result.proof is result.answer is None
        assert result.describe() != "ok"


def test_strict_parser_returns_stripped_parts():
    result = parse_strict(GOOD)
    assert result.think == "The context gives 14.5 months."
    assert result.proof == '"median OS 14.5 months"'
    assert result.answer == "14.5 months"


def test_messages_name_the_tag():
    assert "<proof>" in parse_strict("<think>a</think><answer>c</answer>").describe()
    assert "<answer>" in parse_strict("<think>a</think><proof>b</proof><answer>c").describe()
    assert "out of order" in parse_strict("<proof>b</proof><think>a</think><answer>c</answer>").describe()


def test_render_matches_dataset_layout():
    assert render_reply(" a ", "b\n", "\nc") == (
        "<think>\na\n</think>\n\n<proof>\nb\n</proof>\n\n<answer>\nc\n</answer>"
    )


safe_text = st.text(alphabet=st.characters(blacklist_characters="<>"), min_size=1).filter(lambda s: s.strip())


@given(safe_text, safe_text, safe_text)
def test_render_then_parse_round_trips(think, proof, answer):
    result = parse_strict(render_reply(think, proof, answer))
    assert result.ok, result.describe()
    assert (result.think, result.proof, result.answer) == (think.strip(), proof.strip(), answer.strip())


@given(safe_text, safe_text, safe_text, st.sampled_from(["think", "proof", "answer"]))
def test_dropping_any_closing_tag_is_never_ok(think, proof, answer, tag):
    reply = render_reply(think, proof, answer).replace(f"</{tag}>", "", 1)
    assert parse_strict(reply).primary_kind == UNCLOSED


def test_lenient_extracts_from_broken_replies():
    parsed = parse_lenient("<think>a<proof>b</proof> <answer>c")
    assert (parsed.think, parsed.proof, parsed.answer) == ("a", "b", "c")
    assert parse_lenient("plain words<end_of_turn>").answer == "plain words"
    assert parse_lenient("<think>only thinking</think>").answer is None
    assert parse_lenient("").tags_present == {"think": False, "proof": False, "answer": False}


def test_restore_prefilled_think():
    completion = "reasoning\n</think>\n<proof>p</proof>\n<answer>a</answer>"
    restored = restore_prefilled_think(completion, "<think>\n")
    assert restored.startswith("<think>\nreasoning")
    assert parse_strict(restored).ok
    assert restore_prefilled_think(restored, "<think>\n") == restored
    assert restore_prefilled_think(completion, "") == completion
