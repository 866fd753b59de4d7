"""GRPO rewards in the Tunix and TRL/Unsloth conventions, checked against the gym (the oracle)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.chat import render_prompt
from adapters.dsa_format import parse_strict, render_reply, restore_prefilled_think
from adapters.errors import DatasetError
from adapters.gym_scorer import ground_truth_from_row, split_user_content
from adapters.rewards import (
    gym_rubric_reward,
    make_reward,
    partial_format_reward,
    partial_format_score,
    prompt_prefills_think,
    strict_format_reward,
    trl_rewards,
    tunix_rewards,
)

FIXTURES = Path(__file__).parent / "fixtures" / "eval"
ROWS = {json.loads(l)["metadata"]["id"]: json.loads(l)
        for l in (FIXTURES / "dataset" / "test.jsonl").read_text(encoding="utf-8").splitlines() if l.strip()}
CASES = [json.loads(l) for l in (FIXTURES / "cases.jsonl").read_text(encoding="utf-8").splitlines() if l.strip()]


def _prompt(case) -> str:
    """The Tunix prompt string for a case: the training rendering, pre-filled when the case is."""
    return render_prompt(ROWS[case["row"]]["messages"], generation_prefill="<think>\n" if case["prefilled"] else "")


def _trl_prompt(case) -> list[dict]:
    messages = [ROWS[case["row"]]["messages"][0]]
    return messages + ([{"role": "assistant", "content": "<think>\n"}] if case["prefilled"] else [])


def _oracle(case) -> float:
    from med_safety_eval import EvaluationItem, GroundTruth, LocalEvaluationManager, RewardConfig

    truth = ground_truth_from_row(ROWS[case["row"]])
    reply = restore_prefilled_think(case["response"]) if case["prefilled"] else case["response"]
    item = EvaluationItem(response=reply, ground_truth=GroundTruth(
        context=truth.context, question=truth.question, expected_answer={"final": truth.gold, "proof": ""}))
    return LocalEvaluationManager(RewardConfig()).evaluate_batch([item]).rewards[0]


def test_strict_reward_tunix_convention_detects_prefill_from_prompt():
    prompts = [_prompt(c) for c in CASES]
    rewards = strict_format_reward(prompts, [c["response"] for c in CASES])
    assert rewards == [1.0 if c["strict_ok"] else 0.0 for c in CASES]


def test_strict_reward_trl_convention():
    prompts = [_trl_prompt(c) for c in CASES]
    completions = [[{"role": "assistant", "content": c["response"]}] for c in CASES]
    assert strict_format_reward(prompts, completions) == [1.0 if c["strict_ok"] else 0.0 for c in CASES]


def test_prefill_option_overrides_detection():
    case = next(c for c in CASES if c["case"] == "prefilled_ok")
    plain_prompt = render_prompt(ROWS["r1"]["messages"])
    assert strict_format_reward([plain_prompt], [case["response"]]) == [0.0]
    assert strict_format_reward([plain_prompt], [case["response"]], prefilled_think=True) == [1.0]
    assert strict_format_reward([_prompt(case)], [case["response"]], prefilled_think=False) == [0.0]
    # A completion that already opens <think> is not given a second one.
    gold = ROWS["r1"]["messages"][1]["content"]
    assert strict_format_reward(None, [gold], prefilled_think=True) == [1.0]


def test_prompt_prefill_detection():
    assert prompt_prefills_think("<start_of_turn>model\n<think>\n")
    assert prompt_prefills_think("...<think>")
    assert not prompt_prefills_think("<start_of_turn>model\n")
    assert prompt_prefills_think([{"role": "user", "content": "q"}, {"role": "assistant", "content": "<think>\n"}])
    assert not prompt_prefills_think([{"role": "user", "content": "ends with <think>"}])
    assert not prompt_prefills_think(None)


def test_gym_reward_equals_oracle_in_both_conventions():
    expected = [_oracle(c) for c in CASES]
    messages = [ROWS[c["row"]]["messages"] for c in CASES]
    # TRL / Unsloth: conversational prompts and completions, the dataset's `messages` column.
    trl = gym_rubric_reward([_trl_prompt(c) for c in CASES],
                            [[{"role": "assistant", "content": c["response"]}] for c in CASES], messages=messages)
    assert trl == expected
    # Tunix: string prompts; ground truth from explicit context/answer columns.
    truths = [ground_truth_from_row(ROWS[c["row"]]) for c in CASES]
    tunix = gym_rubric_reward([_prompt(c) for c in CASES], [c["response"] for c in CASES],
                              context=[t.context for t in truths], answer=[t.gold for t in truths])
    assert tunix == expected
    # Tunix with only `answer`: the context is cut from the rendered prompt.
    cut = gym_rubric_reward([_prompt(c) for c in CASES], [c["response"] for c in CASES],
                            answer=[t.gold for t in truths])
    assert cut == expected


def test_gym_reward_scale_and_missing_ground_truth():
    gold = ROWS["r1"]["messages"][1]["content"]
    assert gym_rubric_reward(None, [gold], messages=[ROWS["r1"]["messages"]], scale=0.02) == [1.0]
    with pytest.raises(DatasetError, match="'messages' column or an 'answer' column"):
        gym_rubric_reward(["prompt"], [gold])


def test_partial_reward_values():
    gold = ROWS["r1"]["messages"][1]["content"]
    assert partial_format_score(gold) == 1.0
    assert partial_format_score("") == 0.0
    assert partial_format_score("<think>a</think><answer>b</answer>") == 0.5
    assert partial_format_score("<think>a</think><answer>b</answer><proof>c</proof>") == 0.75
    assert partial_format_score("<think>a</think><proof>c</proof><answer> </answer>") == 0.5
    assert partial_format_score("<think>a</think><proof>c</proof><answer>b</answer><answer>b</answer>") == 0.5
    assert partial_format_score("</think>a<think><proof>c</proof><answer>b</answer>") == 0.5
    # Partial credit ignores text around the blocks; strict does not.
    assert partial_format_score("Sure!\n" + gold + "\nbye") == 1.0
    assert partial_format_reward(None, [[{"role": "assistant", "content": gold}], "x"]) == [1.0, 0.0]


_piece = st.sampled_from(list("ab \n<>/") + ["<think>", "</think>", "<proof>", "</proof>", "<answer>",
                                               "</answer>", "54 Gy"])


@settings(max_examples=200, deadline=None)
@given(st.lists(_piece, min_size=1, max_size=24).map("".join))
def test_partial_reward_bounds_and_strict_implies_full(reply):
    score = partial_format_score(reply)
    assert 0.0 <= score <= 1.0 and (score * 4).is_integer()
    if parse_strict(reply).ok:
        assert score == 1.0


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=1, max_size=20).filter(lambda s: s.strip() and "<" not in s and ">" not in s),
       st.text(min_size=1, max_size=20).filter(lambda s: s.strip() and "<" not in s and ">" not in s))
def test_rendered_replies_get_full_format_rewards(think, answer):
    reply = render_reply(think, "quoted", answer)
    assert strict_format_reward(None, [reply]) == [1.0]
    assert partial_format_reward(None, [reply]) == [1.0]
    # The same reply generated after a pre-filled "<think>\n" scores the same once restored.
    completion = reply[len("<think>\n"):]
    assert strict_format_reward(["<start_of_turn>model\n<think>\n"], [completion]) == [1.0]


def test_factories_and_conventions():
    names = [fn.__name__ for fn in tunix_rewards()]
    assert names == ["strict_format_reward", "partial_format_reward", "gym_rubric_reward"]
    assert [fn.__name__ for fn in trl_rewards()] == names
    gold = ROWS["r1"]["messages"][1]["content"]
    strict_tunix = make_reward("strict", "tunix")
    with pytest.raises(TypeError, match="plain strings"):
        strict_tunix(["p"], [[{"role": "assistant", "content": gold}]])
    assert make_reward("strict", "unsloth")(None, [[{"role": "assistant", "content": gold}]]) == [1.0]
    gym = make_reward("gym", "trl", prefilled_think=True, scale=0.5)
    # Extra TRL keyword arguments (completion_ids, trainer_state) are ignored.
    assert gym(None, [gold[len("<think>\n"):]], messages=[ROWS["r1"]["messages"]], completion_ids=[[1]],
               trainer_state=None) == [25.0]
    with pytest.raises(ValueError):
        make_reward("fancy", "trl")
    with pytest.raises(ValueError):
        make_reward("strict", "jax")


def test_context_cut_from_prompt_matches_row():
    row = ROWS["h1"]
    context, question = split_user_content(render_prompt(row["messages"]))
    truth = ground_truth_from_row(row)
    assert (context, question) == (truth.context, truth.question)


# --------------------------------------------------------------------------------------------- gold-aware gym


def _declining_rows(count: int = 3) -> list[dict]:
    """v2 rows whose gold reply the gym scores as a right abstention or a right conflict claim."""
    from adapters.gym_scorer import GymScorer
    from adapters.synthetic.rows import generate_rows

    scorer, found = GymScorer(), []
    for row in generate_rows(60, seed=3):
        truth = ground_truth_from_row(row)
        if scorer.score(truth.gold, truth).branch in ("abstention_correct", "conflict_correct"):
            found.append(row)
        if len(found) == count:
            return found
    raise AssertionError("the v2 generator made no declining gold replies")


def _quote_as_answer(gold: str, which: int) -> str:
    """The gold reply with its answer replaced by one of its own proof quotes: an answer, not an abstention."""
    quotes = re.findall(r'^- "(.*)"$', re.search(r"<proof>(.*?)</proof>", gold, re.S).group(1), re.M)
    return re.sub(r"<answer>.*?</answer>", "<answer>\n" + quotes[which % len(quotes)] + "\n</answer>", gold, flags=re.S)


def test_the_gym_pays_an_answer_where_the_gold_abstains_and_the_gold_aware_reward_does_not():
    from adapters.gym_scorer import GymScorer
    from adapters.rewards import gym_gold_aware_reward

    rows = _declining_rows()
    prompts = [[row["messages"][0]] for row in rows]
    columns = {"messages": [row["messages"] for row in rows]}
    golds = [[{"role": "assistant", "content": row["messages"][-1]["content"]}] for row in rows]
    answers = [[{"role": "assistant", "content": _quote_as_answer(row["messages"][-1]["content"], 0)}] for row in rows]
    gold_raw = gym_rubric_reward(prompts, golds, **columns)
    answer_raw = gym_rubric_reward(prompts, answers, **columns)
    # The flaw (FIELD_NOTES §2 does not list it): an "answer" that only repeats a quote of the context can
    # score +50, above the right abstention's +30.
    assert max(answer_raw) == 50.0 and gold_raw == [30.0] * len(rows)
    scorer = GymScorer()
    answering = [scorer.score(a[0]["content"], ground_truth_from_row(r)).branch in ("answer_correct", "answer_wrong")
                 for a, r in zip(answers, rows)]
    assert sum(answering) >= 2
    expected = [-5.0 if a else raw for a, raw in zip(answering, answer_raw)]
    assert gym_gold_aware_reward(prompts, answers, **columns) == expected
    assert gym_gold_aware_reward(prompts, golds, **columns) == gold_raw  # the right abstention keeps its +30
    assert gym_gold_aware_reward(prompts, answers, scale=0.02, **columns) == [x * 0.02 for x in expected]


def test_the_gold_aware_reward_is_the_gym_where_the_gold_answers():
    from adapters.gym_scorer import GymScorer
    from adapters.rewards import gym_gold_aware_reward

    scorer = GymScorer()

    def gold_answers(case) -> bool:
        truth = ground_truth_from_row(ROWS[case["row"]])
        return scorer.score(truth.gold, truth).branch not in ("abstention_correct", "conflict_correct")

    cases = [c for c in CASES if gold_answers(c)]
    assert len(cases) >= 5
    prompts = [_trl_prompt(c) for c in cases]
    completions = [[{"role": "assistant", "content": c["response"]}] for c in cases]
    columns = {"messages": [ROWS[c["row"]]["messages"] for c in cases]}
    assert gym_gold_aware_reward(prompts, completions, **columns) == gym_rubric_reward(prompts, completions, **columns)


def test_missed_decline_is_an_answer_where_the_gold_declines():
    from adapters.gym_scorer import BRANCHES, gold_aware_reward, missed_decline

    for gold in BRANCHES:
        for reply in BRANCHES:
            expected = gold in ("abstention_correct", "conflict_correct") and reply in ("answer_correct", "answer_wrong")
            assert missed_decline(reply, gold) is expected
            assert gold_aware_reward(50.0, reply, gold) == (-5.0 if expected else 50.0)


def test_the_gold_aware_factory_names_its_reward():
    reward = make_reward("gym-gold-aware", "trl", scale=0.02)
    assert reward.__name__ == "gym_gold_aware_reward"
    assert [f.__name__ for f in trl_rewards(gym_kind="gym-gold-aware")][-1] == "gym_gold_aware_reward"
