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


def _greedy_reference(model, tokenizer, prompt: str, max_new_tokens: int) -> list[int]:
    """Greedy decoding written out by hand: argmax of a full forward pass per step, no generate()."""
    import torch

    from adapters.chat import STOP_TOKEN_IDS

    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    new: list[int] = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model(input_ids=torch.tensor([ids + new])).logits[0, -1]
            token = int(logits.argmax())
            if token in STOP_TOKEN_IDS:
                break
            new.append(token)
    return new


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
    # Not empty, and the very replies a hand-written greedy loop gives on each prompt alone.
    references = [_greedy_reference(model, tokenizer, p, 6) for p in prompts]
    assert all(len(ids) > 0 for ids in references), references
    assert batched == [tokenizer.decode(ids, skip_special_tokens=False) for ids in references]
    assert all(reply.strip() for reply in batched), batched
    # Replies depend on the prompt (not one fixed string for every row).
    assert len(set(batched)) > 1, batched
