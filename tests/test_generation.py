"""Batched generation: length-sorted batches, replies back in prompt order, same replies as one by one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.chat import render_prompt
from adapters.generation import generate, length_sorted_batches


@given(st.lists(st.integers(min_value=1, max_value=2000), max_size=60), st.integers(min_value=1, max_value=12))
def test_length_sorted_batches_is_a_partition_sorted_by_length(lengths, batch_size):
    batches = length_sorted_batches(lengths, batch_size)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(lengths)))
    assert all(len(batch) == batch_size for batch in batches[:-1])
    assert all(0 < len(batch) <= batch_size for batch in batches)
    # Non-decreasing length across the whole order, ties broken by index: deterministic.
    keys = [(lengths[i], i) for i in flat]
    assert keys == sorted(keys)


def test_length_sorted_batches_cut_padding_on_a_mixed_batch():
    lengths = [1000, 100, 1000, 100]
    assert length_sorted_batches(lengths, 2) == [[1, 3], [0, 2]]


def test_length_sorted_batches_rejects_batch_size_zero():
    with pytest.raises(ValueError, match="batch_size"):
        length_sorted_batches([3], 0)


@pytest.mark.e2e
def test_generate_keeps_prompt_order_and_matches_one_by_one(tiny_model_dir):
    from adapters.generation import load_model

    model, tokenizer = load_model(tiny_model_dir, dtype="float32")
    questions = ["a long question " * 20, "short?", "a medium question " * 5, "tiny"]
    prompts = [render_prompt([{"role": "user", "content": q}]) for q in questions]
    batched = generate(model, tokenizer, prompts, max_new_tokens=6, batch_size=2)
    one_by_one = [generate(model, tokenizer, [p], max_new_tokens=6, batch_size=1)[0] for p in prompts]
    assert len(batched) == len(prompts)
    assert batched == one_by_one
