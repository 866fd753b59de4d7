"""Token-exact masking (adapters/masking.py) on the real Gemma-3 tokenizer (models/tiny-gemma3).

Independent oracles: (1) a full scan of the tokenizer's offsets against the rendered reply spans,
(2) transformers' own ``apply_chat_template(..., return_assistant_tokens_mask=True)`` over the
Jinja template's ``{% generation %}`` block, (3) TRL's dataset preparation (``SFTTrainer.train_dataset``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.chat import BOS_ID, CONTROL_TOKENS, END_OF_TURN_ID, PAD_ID, render_conversation, render_prompt
from adapters.errors import ControlTokenError, ConversationError, DSAError
from adapters.masking import (
    DROP_TOO_LONG,
    TRL_SFT_KWARGS,
    mask_batch,
    mask_conversation,
    to_prompt_completion,
    to_trl_tokenized,
    to_tunix,
    tunix_batch,
    tunix_trained_targets,
)

ROW = [
    {"role": "user", "content": "<context>\nMedian OS was 14.5 months.\n</context>\n\n<question>\nWhat was median OS?\n</question>"},
    {
        "role": "assistant",
        "content": "<think>\nThe context states it.\n</think>\n\n<proof>\nMedian OS was 14.5 months.\n</proof>\n\n"
        "<answer>\n14.5 months\n</answer>",
    },
]


def _offset_oracle(tokenizer, messages):
    """Independent expectation: mask[i] = 1 iff token i's offsets lie inside a reply span."""
    rendered = render_conversation(messages)
    enc = tokenizer(rendered.text, add_special_tokens=False, return_offsets_mapping=True)
    expected = []
    for start, end in enc["offset_mapping"]:
        inside = any(s <= start and end <= e for s, e in rendered.reply_spans)
        straddles = any(start < s < end or start < e < end for s, e in rendered.reply_spans)
        assert not straddles, "a token straddles a reply boundary"
        expected.append(int(inside))
    return rendered, enc["input_ids"], expected


# --------------------------------------------------------------------------------------------
# The known row: boundary, bos, trained span
# --------------------------------------------------------------------------------------------


def test_known_row_boundary_and_first_trained_token(tokenizer):
    ex = mask_conversation(ROW, tokenizer)
    first = ex.loss_mask.index(1)
    pieces = [tokenizer.decode([t]) for t in ex.input_ids]
    # model\n | <think>: "\n" is its own token, "<" starts the reply: nothing straddles.
    assert pieces[first - 2 : first + 3] == ["model", "\n", "<", "think", ">"]
    assert ex.input_ids[-2] == END_OF_TURN_ID
    assert tokenizer.decode(ex.trained_ids()) == ROW[1]["content"] + "<end_of_turn>"
    assert ex.input_ids.count(BOS_ID) == 1 and ex.input_ids[0] == BOS_ID
    assert ex.attention_mask == [1] * len(ex.input_ids)
    # The last token (the "\n" after <end_of_turn>) is not trained.
    assert ex.loss_mask[-1] == 0 and ex.loss_mask[-2] == 1


def test_mask_equals_transformers_assistant_mask(tokenizer):
    ex = mask_conversation(ROW, tokenizer)
    out = tokenizer.apply_chat_template(ROW, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    assert out["input_ids"] == ex.input_ids
    assert out["assistant_masks"] == ex.loss_mask


def test_row_dict_accepted_and_batch_matches_single(tokenizer):
    rows = [{"messages": ROW, "metadata": {"id": "x"}}, ROW]
    examples, dropped = mask_batch(rows, tokenizer)
    assert dropped == [] and [i for i, _ in examples] == [0, 1]
    single = mask_conversation(ROW, tokenizer)
    assert examples[0][1] == single == examples[1][1]


# --------------------------------------------------------------------------------------------
# Property tests
# --------------------------------------------------------------------------------------------

TAGLIKE = st.sampled_from(
    ["<think>", "</think>", "<proof>", "</proof>", "<answer>", "</answer>", "<", ">", "</", "><", "\n", "\n\n",
     " ", "model", "user", "<start_of", "end_of_turn>", "<bo", "s>", "14.5", "é", "日本", "🙂", "\t", "\u200b"]
)
TEXT = st.lists(st.one_of(st.text(max_size=12), TAGLIKE), max_size=8).map("".join).filter(
    lambda s: not any(tok in s for tok in CONTROL_TOKENS)
)


@st.composite
def conversations(draw):
    messages = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(TEXT)})
    for _ in range(draw(st.integers(1, 3))):
        messages.append({"role": "user", "content": draw(TEXT)})
        messages.append({"role": "assistant", "content": draw(TEXT)})
    if draw(st.booleans()):
        messages.append({"role": "user", "content": draw(TEXT)})  # a trailing prompt turn, never trained
    return messages


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPERTY
@given(messages=conversations())
def test_property_mask_is_exactly_the_replies(tokenizer, messages):
    rendered, ids, expected = _offset_oracle(tokenizer, messages)
    ex = mask_conversation(messages, tokenizer)
    assert ex.input_ids == ids
    assert ex.loss_mask == expected
    assert ex.input_ids.count(BOS_ID) == 1 and ex.input_ids[0] == BOS_ID
    # Never a prompt token: every trained token's text lies in a reply span, and the trained
    # tokens decode to exactly the replies + <end_of_turn>, in order.
    replies = [rendered.text[s:e] for s, e in rendered.reply_spans]
    assert tokenizer.decode(ex.trained_ids()) == "".join(replies)
    assert ex.n_trained == sum(1 for m in expected if m)
    # Each reply's first trained token starts exactly at the reply's first character.
    starts = {s for s, _ in rendered.reply_spans}
    offsets = tokenizer(rendered.text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    run_starts = [i for i, m in enumerate(ex.loss_mask) if m and (i == 0 or not ex.loss_mask[i - 1])]
    assert {offsets[i][0] for i in run_starts} <= starts
    # Independent oracle 2: the Jinja template's generation block through transformers.
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    assert out["input_ids"] == ex.input_ids
    assert list(out["assistant_masks"]) == ex.loss_mask
    # The prompt tokenized alone is a prefix of the whole (TRL's "tokenized prompt is not a prefix"
    # warning cannot fire): the last reply starts right where the inference prompt ends.
    if messages[-1]["role"] == "assistant":
        prompt_ids = tokenizer(render_prompt(messages), add_special_tokens=False)["input_ids"]
        assert ex.input_ids[: len(prompt_ids)] == prompt_ids
        assert run_starts[-1] == len(prompt_ids)


@PROPERTY
@given(messages=conversations(), slack=st.integers(-60, 5))
def test_property_dropped_iff_reply_does_not_fit(tokenizer, messages, slack):
    full = mask_conversation(messages, tokenizer)
    last_trained = len(full.loss_mask) - 1 - full.loss_mask[::-1].index(1)
    max_length = max(1, len(full.input_ids) + slack)
    examples, dropped = mask_batch([messages], tokenizer, max_length=max_length)
    if last_trained < max_length:
        assert dropped == [] and len(examples) == 1
        ex = examples[0][1]
        assert len(ex.input_ids) <= max_length
        assert ex.input_ids == full.input_ids[:max_length]
        assert ex.loss_mask == full.loss_mask[:max_length]
        assert ex.n_trained == full.n_trained  # never trained half-masked
    else:
        assert examples == [] and len(dropped) == 1
        assert dropped[0].index == 0 and dropped[0].kind == DROP_TOO_LONG
        with pytest.raises(ConversationError, match="reply would be cut"):
            mask_conversation(messages, tokenizer, max_length=max_length)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=conversations(), control=st.sampled_from(CONTROL_TOKENS), data=st.data())
def test_property_control_tokens_rejected(tokenizer, messages, control, data):
    where = data.draw(st.integers(0, len(messages) - 1))
    text = messages[where]["content"]
    cut = data.draw(st.integers(0, len(text)))
    messages[where] = {**messages[where], "content": text[:cut] + control + text[cut:]}
    with pytest.raises(ControlTokenError, match=control):
        mask_conversation(messages, tokenizer)
    with pytest.raises(ControlTokenError, match=r"^row 1: "):
        mask_batch([ROW, messages, ROW], tokenizer)


# --------------------------------------------------------------------------------------------
# Errors and edge cases
# --------------------------------------------------------------------------------------------


def test_roles_must_alternate_batch_names_row(tokenizer):
    bad = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    with pytest.raises(ConversationError, match=r"^row 2: .*alternate"):
        mask_batch([ROW, ROW, bad], tokenizer)


def test_conversation_without_reply_is_dropped_not_trained(tokenizer):
    examples, dropped = mask_batch([[{"role": "user", "content": "hi"}], ROW], tokenizer)
    assert [i for i, _ in examples] == [1]
    assert [(d.index, d.kind) for d in dropped] == [(0, "no_reply")]


@pytest.mark.parametrize("bad", [0, -3, 2.5, "10", True])
def test_bad_max_length(tokenizer, bad):
    with pytest.raises(DSAError, match="max_length"):
        mask_batch([ROW], tokenizer, max_length=bad)


def test_numpy_max_length_accepted(tokenizer):
    examples, dropped = mask_batch([ROW], tokenizer, max_length=np.int64(512))
    assert dropped == [] and examples[0][1] == mask_conversation(ROW, tokenizer)


def test_prompt_completion_shape():
    pc = to_prompt_completion({"messages": ROW})
    assert pc == {"prompt": [ROW[0]], "completion": [ROW[1]]}
    multi = ROW + [{"role": "user", "content": "again"}, {"role": "assistant", "content": "x"}]
    with pytest.raises(ConversationError, match="multi-turn"):
        to_prompt_completion(multi)
    with pytest.raises(ConversationError, match="ends with a model reply"):
        to_prompt_completion(ROW[:1])


# --------------------------------------------------------------------------------------------
# Tunix: shifted-target convention
# --------------------------------------------------------------------------------------------


def _tunix_default_loss_targets(input_tokens, input_mask):
    """Re-implementation of Tunix PeftTrainer's default loss selection (FIELD_NOTES §5), batched:
    logits[:, :-1] predict input_tokens[:, 1:], weighted by input_mask[:, 1:]."""
    targets = input_tokens[:, 1:]
    weights = input_mask[:, 1:]
    return [row[w.astype(bool)].tolist() for row, w in zip(targets, weights)]


def test_tunix_shapes_and_shift(tokenizer):
    long_row = ROW + [{"role": "user", "content": "More?"}, {"role": "assistant", "content": "<think>\nno\n</think>"}]
    examples = [mask_conversation(ROW, tokenizer), mask_conversation(long_row, tokenizer)]
    length = max(len(e.input_ids) for e in examples) + 7
    batch = tunix_batch(examples, length)
    assert batch["input_tokens"].shape == (2, length) and batch["input_tokens"].dtype == np.int32
    assert batch["input_mask"].shape == (2, length) and batch["input_mask"].dtype == bool
    trained = _tunix_default_loss_targets(batch["input_tokens"], batch["input_mask"])
    assert len(trained) == len(examples) == 2
    for row, (ex, targets) in enumerate(zip(examples, trained)):
        # Each row: its own tokens and mask, then padding (pad id, mask off) to the full length.
        n = len(ex.input_ids)
        tokens, mask = batch["input_tokens"][row], batch["input_mask"][row]
        assert n < length and tokens[:n].tolist() == ex.input_ids
        assert mask[:n].astype(int).tolist() == ex.loss_mask
        assert (tokens[n:] == PAD_ID).all() and not mask[n:].any(), row
        # The trained predictions are exactly the reply tokens + <end_of_turn>, nothing else.
        assert targets == ex.trained_ids()
        assert targets[-1] == END_OF_TURN_ID
        assert tokenizer.decode(targets[:3]) == "<think>"
    assert tunix_trained_targets(**to_tunix(examples[0], length)) == examples[0].trained_ids()
    # The Kaggle notebook's convention (mask one token late) would miss the first "<" piece.
    late = np.roll(batch["input_mask"], 1, axis=1)
    assert _tunix_default_loss_targets(batch["input_tokens"], late)[0][0] != examples[0].trained_ids()[0]
    with pytest.raises(DSAError, match="Tunix length"):
        to_tunix(examples[1], len(examples[1].input_ids) - 1)


# --------------------------------------------------------------------------------------------
# TRL: both shapes through SFTTrainer's own dataset preparation
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))


def trl_prepared(model, tokenizer, rows, tmp_path, **config):
    """Rows -> TRL's prepared train_dataset (input_ids, labels) as lists of dicts."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(output_dir=str(tmp_path), use_cpu=True, report_to=[], **config)
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    return trainer.train_dataset


def _labels_mask(labels):
    return [int(label != -100) for label in labels]


def test_trl_pretokenized_rows(tiny_model, tokenizer, tmp_path):
    multi = ROW + [{"role": "user", "content": "And PFS?"}, {"role": "assistant", "content": "<think>\nn/a\n</think>"}]
    examples, _ = mask_batch([ROW, multi], tokenizer, max_length=512)
    rows = [to_trl_tokenized(ex) for _, ex in examples]
    # Under any completion_only_loss setting TRL must train exactly our mask (assistant_masks always applies).
    for setting in (None, True, False):
        prepared = trl_prepared(tiny_model, tokenizer, rows, tmp_path, completion_only_loss=setting, max_length=512)
        assert len(prepared) == len(examples) == 2
        for (_, ex), out in zip(examples, prepared):
            assert out["input_ids"] == ex.input_ids
            assert _labels_mask(out["labels"]) == ex.loss_mask


def test_trl_prompt_completion_rows(tiny_model, tokenizer, tmp_path):
    variants = [
        ROW,
        [{"role": "system", "content": "You are careful."}, *ROW],  # system folded into the first user turn
        [ROW[0], {"role": "assistant", "content": "<think>x</think><proof>y</proof><answer>日本 🙂</answer>"}],  # merged tags
    ]
    prepared = trl_prepared(
        tiny_model, tokenizer, [to_prompt_completion(v) for v in variants], tmp_path, max_length=None, **TRL_SFT_KWARGS
    )
    assert len(prepared) == len(variants)
    for messages, out in zip(variants, prepared):
        mine = mask_conversation(messages, tokenizer)
        assert out["input_ids"] == mine.input_ids
        assert _labels_mask(out["labels"]) == mine.loss_mask
    ex = mask_conversation(ROW, tokenizer)
    rows = [to_prompt_completion(ROW)]
    # The trap TRL_SFT_KWARGS avoids: completion_only_loss alone also trains the "\n" that the
    # template writes after the final <end_of_turn> (outside the generation block), and only that.
    alone = trl_prepared(tiny_model, tokenizer, rows, tmp_path, max_length=None, completion_only_loss=True)[0]
    assert alone["input_ids"] == ex.input_ids and len(alone["labels"]) == len(ex.loss_mask)
    extra = [i for i, (a, b) in enumerate(zip(_labels_mask(alone["labels"]), ex.loss_mask)) if a != b]
    assert extra == [len(ex.input_ids) - 1] and tokenizer.decode([ex.input_ids[-1]]) == "\n"


@pytest.mark.e2e
def test_trl_agrees_on_all_offline_rows(tiny_model, tokenizer, offline_jsonl, tmp_path):
    rows = [json.loads(line) for line in offline_jsonl.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) == 1500
    examples, dropped = mask_batch(rows, tokenizer)
    assert dropped == [] and len(examples) == 1500
    prepared = trl_prepared(
        tiny_model, tokenizer, [to_prompt_completion(r["messages"]) for r in rows], tmp_path,
        max_length=None, **TRL_SFT_KWARGS,
    )
    assert len(prepared) == len(examples)
    mismatches = [
        i for (i, ex), out in zip(examples, prepared)
        if out["input_ids"] != ex.input_ids or _labels_mask(out["labels"]) != ex.loss_mask
    ]
    assert mismatches == []
    for _, ex in examples:
        assert tokenizer.decode(ex.trained_ids()[:3]) == "<think>"
