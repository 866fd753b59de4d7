"""adapters/chat.py: the Python renderer equals GEMMA_CHAT_TEMPLATE run by transformers' Jinja.

Oracle: ``tokenizer.apply_chat_template(messages, chat_template=GEMMA_CHAT_TEMPLATE, tokenize=False)``.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.chat import (
    CONTROL_TOKENS,
    GEMMA_CHAT_TEMPLATE,
    STOP_TOKEN_IDS,
    check_control_tokens,
    render_conversation,
    render_prompt,
)
from adapters.errors import ControlTokenError, ConversationError

TEXT = (
    st.lists(st.sampled_from(list("ab <>/\n\t é日🙂") + ["<think>", "</answer>", "model", "user", "<bo"]), max_size=20)
    .map("".join)
    .filter(lambda s: not any(tok in s for tok in CONTROL_TOKENS))
)


def jinja(tokenizer, messages, **kwargs):
    return tokenizer.apply_chat_template(messages, chat_template=GEMMA_CHAT_TEMPLATE, tokenize=False, **kwargs)


@st.composite
def conversations(draw):
    messages = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(TEXT)})
    turns = draw(st.integers(1, 5))
    for i in range(turns):
        messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": draw(TEXT)})
    return messages


SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(messages=conversations(), generation_prompt=st.booleans())
def test_python_render_equals_jinja(tokenizer, messages, generation_prompt):
    rendered = render_conversation(messages, add_generation_prompt=generation_prompt)
    assert rendered.text == jinja(tokenizer, messages, add_generation_prompt=generation_prompt)
    # Each reply span is the trimmed reply + <end_of_turn>, right after the model header.
    replies = [m["content"].strip() + "<end_of_turn>" for m in messages if m["role"] == "assistant"]
    assert [rendered.text[s:e] for s, e in rendered.reply_spans] == replies
    for start, _ in rendered.reply_spans:
        assert rendered.text[:start].endswith("<start_of_turn>model\n")


def test_saved_tokenizer_carries_the_template(tokenizer):
    assert tokenizer.chat_template == GEMMA_CHAT_TEMPLATE


def test_exact_text_and_system_folded():
    messages = [
        {"role": "system", "content": "  Be safe.  "},
        {"role": "user", "content": "\nQ?\n"},
        {"role": "assistant", "content": " A. "},
    ]
    rendered = render_conversation(messages)
    assert rendered.text == (
        "<bos><start_of_turn>user\nBe safe.\n\nQ?<end_of_turn>\n<start_of_turn>model\nA.<end_of_turn>\n"
    )
    assert rendered.reply_spans == ((len(rendered.text) - len("A.<end_of_turn>\n"), len(rendered.text) - 1),)


def test_system_folded_only_into_first_user_turn(tokenizer):
    messages = [
        {"role": "system", "content": "SYS"},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "r1"},
        {"role": "user", "content": "two"},
    ]
    text = render_conversation(messages).text
    assert text.count("SYS") == 1 and "user\nSYS\n\none" in text
    assert text == jinja(tokenizer, messages)


def test_render_prompt_drops_gold_reply_and_prefills(tokenizer):
    row = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "gold"}]
    assert render_prompt(row) == jinja(tokenizer, row[:1], add_generation_prompt=True)
    assert render_prompt(row, generation_prefill="<think>\n").endswith("<start_of_turn>model\n<think>\n")
    assert "gold" not in render_prompt(row)
    with pytest.raises(ConversationError, match="add_generation_prompt"):
        render_conversation(row, generation_prefill="<think>\n")


@pytest.mark.parametrize(
    "roles",
    [("user", "user"), ("assistant",), ("user", "assistant", "assistant"), ("system", "assistant"),
     ("user", "system"), ("user", "assistant", "system")],
)
def test_roles_must_alternate(tokenizer, roles):
    messages = [{"role": r, "content": "x"} for r in roles]
    with pytest.raises(ConversationError):
        render_conversation(messages)


@pytest.mark.parametrize("roles", [("user", "user"), ("assistant",), ("user", "assistant", "assistant"), ("system", "assistant")])
def test_jinja_raises_on_non_alternating_roles(tokenizer, roles):
    with pytest.raises(Exception, match="alternate"):
        jinja(tokenizer, [{"role": r, "content": "x"} for r in roles])


@pytest.mark.xfail(
    strict=True,
    reason="known divergence: GEMMA_CHAT_TEMPLATE (like the official one) renders a system message that is not "
    "first as a user turn when it sits at a user position; the Python renderer rejects it",
)
def test_jinja_rejects_late_system_message(tokenizer):
    with pytest.raises(Exception, match="alternate"):
        jinja(tokenizer, [{"role": r, "content": "x"} for r in ("user", "system")])


@pytest.mark.parametrize("bad", [[], None, [{"role": "tool", "content": "x"}], [{"role": "user", "content": 3}], ["x"]])
def test_malformed_messages(bad):
    with pytest.raises(ConversationError):
        render_conversation(bad)


@pytest.mark.parametrize("token", CONTROL_TOKENS)
@pytest.mark.parametrize("role_index", [0, 1, 2])
def test_control_tokens_rejected(token, role_index):
    messages = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "u"},
        {"role": "assistant", "content": "a"},
    ]
    messages[role_index]["content"] = f"before {token} after"
    with pytest.raises(ControlTokenError, match=f"message {role_index}.*{token}"):
        render_conversation(messages)
    with pytest.raises(ControlTokenError):
        check_control_tokens(messages)


def test_stop_ids_match_tokenizer(tokenizer):
    assert set(STOP_TOKEN_IDS) == set(tokenizer.convert_tokens_to_ids(["<end_of_turn>", "<eos>"]))
    assert tokenizer.convert_tokens_to_ids(["<pad>", "<eos>", "<bos>", "<start_of_turn>"]) == [0, 1, 2, 105]
