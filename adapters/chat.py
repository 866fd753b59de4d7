"""Gemma-3 chat rendering: the template, the stop ids, and a pure-Python renderer that matches it.

The kit renders conversations in Python (not through Jinja) because the masking core needs the
character span of every model reply; :data:`GEMMA_CHAT_TEMPLATE` is the same rendering for
tokenizers (TRL, ``apply_chat_template``), with ``{% generation %}`` markers around exactly the span
the loss covers: the reply plus its ``<end_of_turn>``. Tests check that both agree byte for byte.

Rendering rules (those of the official Gemma-3 template, FIELD_NOTES §3):

* one ``<bos>`` at the start; turns ``<start_of_turn>{user|model}\\n{content}<end_of_turn>\\n``;
* no system role: a system message is folded into the first user turn as ``system + "\\n\\n"``;
* roles must alternate user / assistant; every content is trimmed of surrounding whitespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .errors import ControlTokenError, ConversationError

BOS, EOS, PAD = "<bos>", "<eos>", "<pad>"
START_OF_TURN, END_OF_TURN = "<start_of_turn>", "<end_of_turn>"
PAD_ID, EOS_ID, BOS_ID, START_OF_TURN_ID, END_OF_TURN_ID = 0, 1, 2, 105, 106
# Generation must stop on <end_of_turn> as well as <eos>, or the model runs past its turn.
STOP_TOKEN_IDS = (END_OF_TURN_ID, EOS_ID)
CONTROL_TOKENS = (BOS, EOS, START_OF_TURN, END_OF_TURN)

MODEL_TURN_PREFIX = f"{START_OF_TURN}model\n"

GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] | trim + '\n\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set first_user_prefix = '' -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{ '<start_of_turn>model\n' }}"
    "{%- generation -%}"
    "{{ message['content'] | trim }}{{ '<end_of_turn>' }}"
    "{%- endgeneration -%}"
    "{{ '\n' }}"
    "{%- else -%}"
    "{{ '<start_of_turn>user\n' + (first_user_prefix if loop.first else '') + message['content'] | trim + '<end_of_turn>\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{ '<start_of_turn>model\n' }}"
    "{%- endif -%}"
)


@dataclass(frozen=True)
class RenderedConversation:
    """A rendered conversation and the character spans the loss covers.

    ``reply_spans`` are half-open ``(start, end)`` offsets into ``text``, each covering one model
    reply plus its ``<end_of_turn>`` (never the turn header, never the newline after).
    """

    text: str
    reply_spans: tuple[tuple[int, int], ...]


def check_control_tokens(messages: Sequence[dict]) -> None:
    """Raise :class:`ControlTokenError` if any message text contains a chat-control token."""
    for index, message in enumerate(messages):
        content = message.get("content")
        if not isinstance(content, str):
            continue
        for token in CONTROL_TOKENS:
            if token in content:
                raise ControlTokenError(
                    f"message {index} ({message.get('role')}) contains the control token {token}"
                )


def check_message_shapes(messages: Sequence[dict]) -> None:
    """Raise :class:`ConversationError` unless ``messages`` is a non-empty list of
    ``{"role": system|user|assistant, "content": str}`` objects (the order is checked by the renderers)."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise ConversationError("messages must be a non-empty list")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ConversationError(f"message {index} is not an object")
        if message.get("role") not in ("system", "user", "assistant"):
            raise ConversationError(f"message {index} has role {message.get('role')!r}")
        if not isinstance(message.get("content"), str):
            raise ConversationError(f"message {index} content is not a string")


def _validate(messages: Sequence[dict]) -> None:
    check_message_shapes(messages)
    check_control_tokens(messages)


def render_conversation(
    messages: Sequence[dict], add_generation_prompt: bool = False, generation_prefill: str = ""
) -> RenderedConversation:
    """Render ``messages`` exactly as :data:`GEMMA_CHAT_TEMPLATE` does, with reply spans.

    ``generation_prefill`` (only with ``add_generation_prompt``) is appended after the model-turn
    header, e.g. ``"<think>\\n"`` to start the reply inside the think block.
    """
    _validate(messages)
    prefix = ""
    turns = list(messages)
    if turns[0]["role"] == "system":
        prefix = turns[0]["content"].strip() + "\n\n"
        turns = turns[1:]
    pieces = [BOS]
    length = len(BOS)
    spans: list[tuple[int, int]] = []
    for index, message in enumerate(turns):
        expected = "user" if index % 2 == 0 else "assistant"
        if message["role"] != expected:
            raise ConversationError(
                f"message roles must alternate user/assistant: turn {index} is {message['role']!r}"
            )
        if expected == "user":
            piece = f"{START_OF_TURN}user\n{prefix if index == 0 else ''}{message['content'].strip()}{END_OF_TURN}\n"
        else:
            reply = message["content"].strip() + END_OF_TURN
            start = length + len(MODEL_TURN_PREFIX)
            spans.append((start, start + len(reply)))
            piece = MODEL_TURN_PREFIX + reply + "\n"
        pieces.append(piece)
        length += len(piece)
    if add_generation_prompt:
        pieces.append(MODEL_TURN_PREFIX + generation_prefill)
    elif generation_prefill:
        raise ConversationError("generation_prefill needs add_generation_prompt=True")
    return RenderedConversation(text="".join(pieces), reply_spans=tuple(spans))


def render_prompt(messages: Sequence[dict], generation_prefill: str = "") -> str:
    """The inference prompt: every turn but a final assistant one, then the model-turn header.

    A trailing assistant message (the gold reply in a dataset row) is dropped, so the same row
    renders the training text with :func:`render_conversation` and the prompt with this function.
    """
    turns = list(messages)
    if turns and isinstance(turns[-1], dict) and turns[-1].get("role") == "assistant":
        turns = turns[:-1]
    return render_conversation(turns, add_generation_prompt=True, generation_prefill=generation_prefill).text
