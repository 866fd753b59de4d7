"""Token-exact loss masks: one tokenization of the whole conversation, masks from character offsets.

The loss mask is 1 exactly on the tokens of every model reply plus its ``<end_of_turn>``, and 0 on
everything else (``<bos>``, turn headers, user text, the newline after ``<end_of_turn>``).

Why offsets and not "tokenize the prompt, count its tokens": Gemma's ``<think>``/``<proof>``/
``<answer>`` are 3 pieces each and adjacent tags merge (FIELD_NOTES §3), so token counts of a
prefix tokenized alone need not match the same prefix inside the whole sequence. Here the text is
rendered once (:func:`adapters.chat.render_conversation`, which knows the character span of each
reply), tokenized once with ``return_offsets_mapping=True``, and each reply span is mapped to the
tokens that cover it.

Boundary at ``model\\n`` | ``<think>`` (measured on the real Gemma-3 tokenizer): the newline is its
own token and ``<`` starts a new one, so no token straddles the start of a reply and the first
trained token is the first piece of ``<think>`` (``<``). The end of a reply is ``<end_of_turn>``,
a special token, so it cannot straddle either. Should some tokenizer ever merge across a reply
boundary, the row is not masked approximately: :func:`mask_conversation` raises
:class:`ConversationError` and :func:`mask_batch` drops the row with reason ``boundary``.

Trainer shapes (all built from one :class:`MaskedExample`):

* TRL, pre-tokenized: :func:`to_trl_tokenized` -> ``{"input_ids", "completion_mask", "assistant_masks"}``.
* TRL, conversational prompt/completion: :func:`to_prompt_completion` with :data:`TRL_SFT_KWARGS`.
* Tunix: :func:`to_tunix` / :func:`tunix_batch` -> ``input_tokens`` / ``input_mask`` (shifted targets).

Any chat model: :func:`mask_conversation` / :func:`mask_batch` take the Gemma path above for the kit's
Gemma template or a Gemma tokenizer (:func:`adapters.chat_template.uses_gemma_path`), byte for byte
as before, and otherwise :func:`template_mask_conversation` / :func:`template_mask_batch`: the text is
the tokenizer's own template rendering (:func:`adapters.chat_template.render_with_template`), tokenized
once with offsets, and the loss mask is 1 on each reply and the template's end-of-turn token(s) after
it (``<|im_end|>``, ``<|eot_id|>``), 0 on everything else; exactly one BOS when the model has one.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from .chat import (
    BOS,
    END_OF_TURN,
    PAD_ID,
    RenderedConversation,
    render_conversation,
)
from .chat_template import TemplateInfo, read_template, render_with_template, uses_gemma_path
from .errors import ControlTokenError, ConversationError, DSAError, TemplateError

# Why a row was dropped by :func:`mask_batch` (never trained half-masked).
DROP_TOO_LONG = "too_long"
DROP_BOUNDARY = "boundary"
DROP_NO_REPLY = "no_reply"
DROP_LOSSY = "lossy"  # template path: the tokenizer cannot spell the reply (its tokens decode to other text)
DROP_REASONS = (DROP_TOO_LONG, DROP_BOUNDARY, DROP_NO_REPLY, DROP_LOSSY)

# SFTConfig keywords under which TRL's preparation of :func:`to_prompt_completion` rows yields
# exactly our mask. completion_only_loss alone also trains the "\n" the Gemma template writes after
# the final <end_of_turn> (outside the {% generation %} block); assistant_only_loss=True intersects
# TRL's completion mask with the template's generation mask and removes exactly that token.
# max_length=None: TRL's default (1024) would cut long haystack rows that mask_batch keeps whole.
TRL_SFT_KWARGS = {"completion_only_loss": True, "assistant_only_loss": True}


@dataclass(frozen=True)
class MaskedExample:
    """One masked conversation; three equally long lists of ``n`` ints (``n <= max_length``).

    ``input_ids[n]``: token ids, starting with the one ``<bos>`` (id 2).
    ``attention_mask[n]``: all 1 (no padding; trainers pad).
    ``loss_mask[n]``: 1 on reply + ``<end_of_turn>`` tokens, 0 elsewhere. ``loss_mask[i]`` says
    whether token ``i`` is a *target* (the prediction of token ``i`` from ``input_ids[:i]`` is trained).
    """

    input_ids: list[int]
    attention_mask: list[int]
    loss_mask: list[int]

    @property
    def n_trained(self) -> int:
        return sum(self.loss_mask)

    def trained_ids(self) -> list[int]:
        """The target ids, in order (what the loss is computed on)."""
        return [t for t, m in zip(self.input_ids, self.loss_mask) if m]


@dataclass(frozen=True)
class DroppedRow:
    """A row :func:`mask_batch` left out: its index in the input, a kind from :data:`DROP_REASONS`,
    words, and its whole tokenized length (untruncated)."""

    index: int
    kind: str
    reason: str
    tokens: int


class _Drop(Exception):
    """Internal: a row that cannot be masked exactly (kind, reason)."""

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def _messages_of(row) -> Sequence[dict]:
    """A dataset row ``{"messages": [...], ...}`` or a bare message list -> the message list."""
    if isinstance(row, dict):
        if "messages" not in row:
            raise ConversationError("row has no 'messages' field")
        return row["messages"]
    return row


def _special_ids(tokenizer) -> tuple[int, int]:
    """(bos id, end_of_turn id) as this tokenizer spells them; both must be single tokens."""
    if not getattr(tokenizer, "is_fast", False):
        raise DSAError("masking needs a fast (Rust) tokenizer: offsets come from it")
    ids = tokenizer.convert_tokens_to_ids([BOS, END_OF_TURN])
    unk = tokenizer.unk_token_id
    if any(i is None or i == unk for i in ids):
        raise DSAError(f"tokenizer has no single token for {BOS} or {END_OF_TURN}")
    return ids[0], ids[1]


def _loss_mask(
    encoding, ids: list[int], offsets: list[tuple[int, int]], spans, bos_id: int, eot_id: int
) -> list[int]:
    """Token ids + offsets + reply char spans -> loss mask (list of n ints). Raises :class:`_Drop`.

    ``encoding`` is the tokenizers ``Encoding`` of this row; its ``char_to_token`` maps a character
    to its token in Rust, so a row costs a few calls per reply rather than a scan of every token.
    """
    if not ids or ids[0] != bos_id or ids.count(bos_id) != 1:
        # Text starts with the literal "<bos>" and add_special_tokens=False: anything else is a bug.
        raise AssertionError(f"expected exactly one leading <bos>, got {ids.count(bos_id)}")
    if not spans:
        raise _Drop(DROP_NO_REPLY, "conversation has no model reply to train on")
    mask = [0] * len(ids)
    for start, end in spans:
        first = encoding.char_to_token(start)
        # The span ends with the <end_of_turn> special token: locate it by its first character.
        last = encoding.char_to_token(end - len(END_OF_TURN))
        if first is None or last is None or offsets[first][0] != start or offsets[last][1] != end:
            raise _Drop(DROP_BOUNDARY, f"a token straddles the reply boundary at characters {start}..{end}")
        if ids[last] != eot_id:
            raise _Drop(DROP_BOUNDARY, "the reply does not end on the <end_of_turn> token")
        mask[first : last + 1] = [1] * (last + 1 - first)
    return mask


def _finish(ids: list[int], mask: list[int], max_length: int | None) -> MaskedExample:
    """Cut to ``max_length`` if only untrained tokens are lost; else :class:`_Drop` (too long)."""
    n = len(ids)
    if max_length is not None and n > max_length:
        # The last trained token is the last <end_of_turn>; only what follows it may be cut.
        last = n - 1 - mask[::-1].index(1)
        if last >= max_length:
            raise _Drop(
                DROP_TOO_LONG,
                f"reply would be cut: it needs {last + 1} tokens, max_length is {max_length}",
            )
        ids, mask = ids[: int(max_length)], mask[: int(max_length)]
    return MaskedExample(input_ids=ids, attention_mask=[1] * len(ids), loss_mask=mask)


def _check_max_length(max_length: int | None) -> None:
    # numbers.Integral admits numpy ints from notebooks; bool is an int but never a length.
    if max_length is not None and (
        isinstance(max_length, bool) or not isinstance(max_length, numbers.Integral) or max_length < 1
    ):
        raise DSAError(f"max_length must be a positive integer, got {max_length!r}")


def _tokenize(tokenizer, texts: list[str]):
    """The one tokenizer call: whole rendered texts, no added specials, with offsets."""
    return tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)


def mask_conversation(messages, tokenizer, max_length: int | None = None) -> MaskedExample:
    """Messages (or a row with ``messages``) -> :class:`MaskedExample`.

    Raises :class:`ControlTokenError` for control tokens in message text, :class:`ConversationError`
    for malformed conversations, for a reply that ``max_length`` would cut, or when a token
    straddles a reply boundary.
    """
    _check_max_length(max_length)
    if not uses_gemma_path(tokenizer):
        return template_mask_conversation(messages, tokenizer, max_length)
    bos_id, eot_id = _special_ids(tokenizer)
    rendered = render_conversation(_messages_of(messages))
    batch = _tokenize(tokenizer, [rendered.text])
    try:
        mask = _loss_mask(
            batch.encodings[0], batch["input_ids"][0], batch["offset_mapping"][0],
            rendered.reply_spans, bos_id, eot_id,
        )
        return _finish(batch["input_ids"][0], mask, max_length)
    except _Drop as drop:
        raise ConversationError(drop.reason) from None


def render_rows(rows: Iterable) -> list[RenderedConversation]:
    """Rows (dicts with ``messages`` or message lists) -> rendered conversations, errors naming the row."""
    rendered = []
    for index, row in enumerate(rows):
        try:
            rendered.append(render_conversation(_messages_of(row)))
        except ControlTokenError as err:
            raise ControlTokenError(f"row {index}: {err}") from None
        except ConversationError as err:
            raise ConversationError(f"row {index}: {err}") from None
    return rendered


def mask_batch(
    rows: Sequence, tokenizer, max_length: int | None = None
) -> tuple[list[tuple[int, MaskedExample]], list[DroppedRow]]:
    """Rows -> ``(examples, dropped)`` with ONE batched fast-tokenizer call.

    ``examples``: ``[(row_index, MaskedExample), ...]`` in input order, for rows kept.
    ``dropped``: :class:`DroppedRow` for each row whose reply ``max_length`` would cut (``too_long``),
    whose reply boundary a token straddles (``boundary``) or that has no reply (``no_reply``).
    Control tokens or malformed messages raise (:class:`ControlTokenError` /
    :class:`ConversationError`) with the row index: those are data errors, not lengths.
    """
    _check_max_length(max_length)
    if not uses_gemma_path(tokenizer):
        return template_mask_batch(rows, tokenizer, max_length)
    bos_id, eot_id = _special_ids(tokenizer)
    return _mask_rendered(
        render_rows(rows), tokenizer, max_length,
        lambda encoding, ids, offsets, conv: _loss_mask(encoding, ids, offsets, conv.reply_spans, bos_id, eot_id),
    )


def _mask_rendered(
    rendered: Sequence[RenderedConversation], tokenizer, max_length: int | None, loss_mask
) -> tuple[list[tuple[int, MaskedExample]], list[DroppedRow]]:
    """Rendered conversations -> ``(examples, dropped)`` as :func:`mask_batch` returns them, with ONE
    batched fast-tokenizer call. ``loss_mask(encoding, ids, offsets, conversation)`` -> the row's mask,
    raising :class:`_Drop` for a row it cannot train (the Gemma path and the template path differ only there)."""
    if not rendered:
        return [], []
    batch = _tokenize(tokenizer, [r.text for r in rendered])
    all_ids, all_offsets, encodings = batch["input_ids"], batch["offset_mapping"], batch.encodings
    examples: list[tuple[int, MaskedExample]] = []
    dropped: list[DroppedRow] = []
    for index, conv in enumerate(rendered):
        try:
            mask = loss_mask(encodings[index], all_ids[index], all_offsets[index], conv)
            examples.append((index, _finish(all_ids[index], mask, max_length)))
        except _Drop as drop:
            dropped.append(DroppedRow(index=index, kind=drop.kind, reason=drop.reason, tokens=len(all_ids[index])))
    return examples, dropped


# ---------------------------------------------------------------------------------------------
# Any chat template (the tokenizer's own)
# ---------------------------------------------------------------------------------------------


def _template_loss_mask(
    encoding, ids: list[int], offsets: list[tuple[int, int]], spans, info: TemplateInfo, text: str, tokenizer
) -> list[int]:
    """Token ids + offsets + reply spans (reply + end-of-turn text) -> loss mask (n ints). Raises :class:`_Drop`.

    1 from the reply's first token through the template's end-of-turn token(s); a token that starts
    before a reply or ends after its end-of-turn text, or an end of turn not tokenized as
    ``info.end_of_turn_ids``, drops the row (``boundary``). The reply's tokens must decode to exactly
    the reply, else the row is dropped (``lossy``): a byte-level vocabulary without some byte drops it
    silently (SmolLM2 has no token for the lead byte of U+40000..U+7FFFF, nor for some control bytes),
    and offsets alone would then call a reply that lost a byte exact.
    """
    if info.bos and (not ids or ids[0] != info.bos_id or ids.count(info.bos_id) != 1):
        raise TemplateError(f"expected exactly one leading {info.bos}, got {ids.count(info.bos_id)}")
    if not spans:
        raise _Drop(DROP_NO_REPLY, "conversation has no model reply to train on")
    mask = [0] * len(ids)
    for start, end in spans:
        eot_start = end - len(info.end_of_turn)
        first, eot_first, last = (encoding.char_to_token(c) for c in (start, eot_start, end - 1))
        if (
            first is None or eot_first is None or last is None
            or offsets[first][0] != start or offsets[eot_first][0] != eot_start or offsets[last][1] != end
        ):
            raise _Drop(DROP_BOUNDARY, f"a token straddles the reply boundary at characters {start}..{end}")
        if tuple(ids[eot_first : last + 1]) != info.end_of_turn_ids:
            raise _Drop(DROP_BOUNDARY, f"the reply does not end on the {info.end_of_turn} token(s)")
        if first < eot_first and tokenizer.decode(ids[first:eot_first]) != text[start:eot_start]:
            raise _Drop(DROP_LOSSY, f"the reply at characters {start}..{eot_start} does not survive tokenization")
        mask[first : last + 1] = [1] * (last + 1 - first)
    return mask


def template_render_rows(rows: Iterable, tokenizer, info: TemplateInfo) -> list[RenderedConversation]:
    """Rows -> conversations rendered by the tokenizer's template, errors naming the row."""
    rendered = []
    for index, row in enumerate(rows):
        try:
            rendered.append(render_with_template(_messages_of(row), tokenizer, info))
        except ControlTokenError as err:
            raise ControlTokenError(f"row {index}: {err}") from None
        except TemplateError as err:
            raise TemplateError(f"row {index}: {err}") from None
        except ConversationError as err:
            raise ConversationError(f"row {index}: {err}") from None
    return rendered


def template_mask_conversation(messages, tokenizer, max_length: int | None = None) -> MaskedExample:
    """:func:`mask_conversation` through the tokenizer's own chat template (any chat model).

    Raises :class:`TemplateError` when the template cannot express the conversation, and
    :class:`ConversationError` / :class:`ControlTokenError` as :func:`mask_conversation` does.
    """
    _check_max_length(max_length)
    info = read_template(tokenizer)
    rendered = render_with_template(_messages_of(messages), tokenizer, info)
    batch = _tokenize(tokenizer, [rendered.text])
    try:
        mask = _template_loss_mask(
            batch.encodings[0], batch["input_ids"][0], batch["offset_mapping"][0], rendered.reply_spans, info,
            rendered.text, tokenizer,
        )
        return _finish(batch["input_ids"][0], mask, max_length)
    except _Drop as drop:
        raise ConversationError(drop.reason) from None


def template_mask_batch(
    rows: Sequence, tokenizer, max_length: int | None = None
) -> tuple[list[tuple[int, MaskedExample]], list[DroppedRow]]:
    """:func:`mask_batch` through the tokenizer's own chat template: same shapes, drops and errors,
    one batched fast-tokenizer call."""
    _check_max_length(max_length)
    info = read_template(tokenizer)
    return _mask_rendered(
        template_render_rows(rows, tokenizer, info), tokenizer, max_length,
        lambda encoding, ids, offsets, conv: _template_loss_mask(
            encoding, ids, offsets, conv.reply_spans, info, conv.text, tokenizer),
    )


# ---------------------------------------------------------------------------------------------
# Trainer shapes
# ---------------------------------------------------------------------------------------------


def to_trl_tokenized(example: MaskedExample) -> dict:
    """-> ``{"input_ids": [n], "completion_mask": [n], "assistant_masks": [n]}`` for TRL 1.16 SFTTrainer.

    TRL skips its own tokenization when a row has ``input_ids`` and builds ``labels`` from
    ``completion_mask`` (only if ``completion_only_loss`` resolves to True) AND ``assistant_masks``
    (always). Both carry our loss mask, so the labels are right under any ``completion_only_loss``
    setting; with only ``completion_mask`` the default (None -> False for rows without
    prompt/completion) would silently train on the whole sequence. Keep ``max_length`` of the
    SFTConfig >= the one used for masking (TRL truncates keep_start afterwards).
    """
    return {
        "input_ids": list(example.input_ids),
        "completion_mask": list(example.loss_mask),
        "assistant_masks": list(example.loss_mask),
    }


def to_prompt_completion(messages) -> dict:
    """A conversation ending in one model reply -> ``{"prompt": [msgs...], "completion": [reply msg]}``.

    For TRL SFTTrainer with ``SFTConfig(**TRL_SFT_KWARGS, max_length=...)`` and a tokenizer carrying
    ``GEMMA_CHAT_TEMPLATE``: TRL then trains exactly our mask (checked token for token in the tests).
    Only the final reply is a completion, so earlier replies of a multi-turn conversation would
    not be trained: those are refused here; use :func:`to_trl_tokenized` for them.
    """
    turns = list(_messages_of(messages))
    render_conversation(turns)  # validates roles, control tokens
    if not turns or turns[-1].get("role") != "assistant":
        raise ConversationError("prompt/completion needs a conversation that ends with a model reply")
    if any(m.get("role") == "assistant" for m in turns[:-1]):
        raise ConversationError(
            "prompt/completion trains only the last reply; use to_trl_tokenized for multi-turn rows"
        )
    return {
        "prompt": [{"role": m["role"], "content": m["content"]} for m in turns[:-1]],
        "completion": [{"role": "assistant", "content": turns[-1]["content"]}],
    }


def to_tunix(example: MaskedExample, length: int, pad_id: int = PAD_ID) -> dict:
    """-> ``{"input_tokens": int32[length], "input_mask": bool[length]}``, right-padded with ``pad_id``.

    Tunix's PeftTrainer loss predicts ``input_tokens[:, 1:]`` from ``logits[:, :-1]`` weighted by
    ``input_mask[:, 1:]``: ``input_mask[i]`` weights the prediction of token ``i``. That is exactly
    the meaning of our ``loss_mask[i]``, so it is copied unshifted; position 0 (``<bos>``) is never
    a target on either side. The Kaggle notebook's off-by-one (mask starting a token late) is the
    bug this avoids. Padding uses ``pad_id`` because Tunix derives attention/positions from
    ``input_tokens != pad_id``.
    """
    n = len(example.input_ids)
    if n > length:
        raise DSAError(f"example has {n} tokens, more than the Tunix length {length} (mask with max_length)")
    tokens = np.full(length, pad_id, dtype=np.int32)
    mask = np.zeros(length, dtype=bool)
    tokens[:n] = example.input_ids
    mask[:n] = np.asarray(example.loss_mask, dtype=bool)
    return {"input_tokens": tokens, "input_mask": mask}


def tunix_batch(examples: Sequence[MaskedExample], length: int, pad_id: int = PAD_ID) -> dict:
    """Examples -> ``{"input_tokens": int32[B, length], "input_mask": bool[B, length]}`` (see :func:`to_tunix`)."""
    rows = [to_tunix(e, length, pad_id) for e in examples]
    return {
        "input_tokens": np.stack([r["input_tokens"] for r in rows]) if rows else np.zeros((0, length), np.int32),
        "input_mask": np.stack([r["input_mask"] for r in rows]) if rows else np.zeros((0, length), bool),
    }


def tunix_trained_targets(input_tokens, input_mask) -> list[int]:
    """What Tunix's loss trains for one row: ``input_tokens[1:]`` where ``input_mask[1:]`` (its shift)."""
    tokens = np.asarray(input_tokens)[1:]
    mask = np.asarray(input_mask)[1:].astype(bool)
    return tokens[mask].tolist()
