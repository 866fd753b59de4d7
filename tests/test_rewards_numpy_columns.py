"""Tunix's GRPO learner hands the batch columns to the rewards as numpy arrays (grain batches, then
np.repeat per generation): the gym reward must read them like lists, not fail for want of an answer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from adapters.chat import render_prompt
from adapters.gym_scorer import ground_truth_from_row
from adapters.rewards import gym_rubric_reward

FIXTURES = Path(__file__).parent / "fixtures" / "eval"
ROWS = {json.loads(l)["metadata"]["id"]: json.loads(l)
        for l in (FIXTURES / "dataset" / "test.jsonl").read_text(encoding="utf-8").splitlines() if l.strip()}
CASES = [json.loads(l) for l in (FIXTURES / "cases.jsonl").read_text(encoding="utf-8").splitlines() if l.strip()]


def test_gym_reward_reads_numpy_columns_like_lists():
    prompts = [render_prompt(ROWS[c["row"]]["messages"]) for c in CASES]
    completions = [c["response"] for c in CASES]
    truths = [ground_truth_from_row(ROWS[c["row"]]) for c in CASES]
    as_lists = gym_rubric_reward(prompts, completions, context=[t.context for t in truths],
                                 answer=[t.gold for t in truths])
    as_arrays = gym_rubric_reward(np.array(prompts), completions, context=np.array([t.context for t in truths]),
                                  answer=np.array([t.gold for t in truths]))
    assert as_arrays == as_lists
    assert len(set(as_lists)) > 1  # the cases differ, so a constant reward would not pass
