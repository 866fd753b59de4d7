"""Chat rendering from any tokenizer's own chat template: reply spans, end of turn, stop ids, pre-fill.

:mod:`adapters.chat` renders Gemma-3 turns in Python; this module renders a conversation with the
tokenizer's template (``tokenizer.apply_chat_template(..., tokenize=False)``) and finds, in that one
string, the character span of each assistant reply plus the end-of-turn text the template writes
after it (``<|im_end|>`` for ChatML, ``<|eot_id|>`` for Llama 3, ``<end_of_turn>`` for Gemma).
Offsets decide, not ``{% generation %}`` markers, so templates without them work too.
:mod:`adapters.masking` maps those spans to tokens.

How a template is read (:func:`read_template`, a few probe renders, no model):

* **end of turn**: render ``[user, assistant]`` probes; the special tokens right after the reply are
  the end-of-turn text (``<|im_end|>``, not the ``\\n`` after it). None -> :class:`TemplateError`.
* **system role**: a system probe that raises or vanishes from the rendering -> the template has no
  system role and the system prompt is folded into the first user turn as ``system + "\\n\\n"``
  (what Gemma's template does itself).
* **BOS**: the tokenizer's ``bos_token`` when the template writes it at the start or the tokenizer
  adds it when encoding; a ``bos_token`` that the template also writes later (SmolLM2's
  ``<|im_start|>`` opens every turn) is a turn marker, not a BOS. Rendered texts carry exactly one BOS string and are
  tokenized with ``add_special_tokens=False``, so a BOS is never doubled.
* **control strings**: the special tokens the template writes, the tokenizer's BOS/EOS/PAD/UNK, and
  :data:`KNOWN_CHAT_CONTROLS` (Gemma, ChatML, Llama 3, Phi-3 turn markers). Message text containing
  one raises :class:`ControlTokenError`: it would open or close a turn and shift the mask.

Reply spans (:func:`render_with_template`): for assistant message ``k`` the prefix ``messages[:k]`` is
rendered with ``add_generation_prompt=True``; the reply must follow that prompt in the whole rendering
as its content (or the content trimmed, as templates trim) then the end-of-turn text. A reply that
is not there verbatim -> :class:`TemplateError`.

The kit's Gemma path stays :mod:`adapters.chat`: :func:`uses_gemma_path` says when (the kit's Gemma
template, or a Gemma tokenizer), and :func:`stop_token_ids` / :func:`model_prompt` dispatch on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from .chat import (
    BOS,
    BOS_ID,
    END_OF_TURN,
    END_OF_TURN_ID,
    GEMMA_CHAT_TEMPLATE,
    START_OF_TURN,
    START_OF_TURN_ID,
    STOP_TOKEN_IDS,
    RenderedConversation,
    check_message_shapes,
    render_prompt,
)
from .errors import ControlTokenError, ConversationError, DSAError, TemplateError

# Turn markers of the common chat families, refused in message text whatever the tokenizer.
KNOWN_CHAT_CONTROLS = (
    "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>",  # Gemma
    "<|im_start|>", "<|im_end|>", "<|endoftext|>",  # ChatML (SmolLM2 and others)
    "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",  # Llama 3
    "<|system|>", "<|user|>", "<|assistant|>", "<|end|>",  # Phi-3
)

# Probe texts: plain letters, so no template trims or escapes them, and no tokenizer merges them with a marker.
_PROBE_SYSTEM = "dsaprobesystem"
_PROBE_USER = "dsaprobeuser"
_PROBE_REPLY = "dsaprobereply"


@dataclass(frozen=True)
class TemplateInfo:
    """What the kit reads from one tokenizer's chat template (:func:`read_template`).

    ``end_of_turn``: the text after every reply (``"<|im_end|>"``); ``end_of_turn_ids``: its token ids.
    ``bos``: the BOS string every rendered text starts with exactly once, ``""`` when the model has none.
    ``system_role``: whether a system message is rendered as such (else folded into the first user turn).
    ``controls``: strings refused in message text, longest first.
    """

    end_of_turn: str
    end_of_turn_ids: tuple[int, ...]
    bos: str
    bos_id: int | None
    system_role: bool
    controls: tuple[str, ...]

    def control_pattern(self) -> re.Pattern:
        return re.compile("|".join(re.escape(c) for c in self.controls))


def _text_tokenizer(tokenizer):
    """A processor wraps its tokenizer; everything here needs the tokenizer itself."""
    return getattr(tokenizer, "tokenizer", tokenizer)


def uses_gemma_path(tokenizer) -> bool:
    """True for the kit's Gemma template or a Gemma tokenizer (``<bos>``=2, ``<start_of_turn>``=105,
    ``<end_of_turn>``=106): those keep :mod:`adapters.chat`'s rendering and masks, exactly as before."""
    tok = _text_tokenizer(tokenizer)
    if getattr(tok, "chat_template", None) == GEMMA_CHAT_TEMPLATE:
        return True
    try:
        ids = tok.convert_tokens_to_ids([BOS, START_OF_TURN, END_OF_TURN])
    except Exception:  # noqa: BLE001  (a tokenizer without these tokens is not Gemma's)
        return False
    return list(ids) == [BOS_ID, START_OF_TURN_ID, END_OF_TURN_ID]


def special_ids(tokenizer) -> set[int]:
    """Ids of every special token: the named ones and the added tokens flagged special."""
    tok = _text_tokenizer(tokenizer)
    ids = set(tok.all_special_ids)
    for index, added in getattr(tok, "added_tokens_decoder", {}).items():
        if getattr(added, "special", False):
            ids.add(index)
    return ids


def apply_template(tokenizer, messages: Sequence[dict], add_generation_prompt: bool = False) -> str:
    """``messages`` -> the template's text (no tokens); a template that raises -> :class:`TemplateError`."""
    tok = _text_tokenizer(tokenizer)
    if not getattr(tok, "chat_template", None):
        raise TemplateError("the tokenizer has no chat template (set tokenizer.chat_template)")
    try:
        text = tok.apply_chat_template(
            [{"role": m["role"], "content": m["content"]} for m in messages],
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
        )
    except Exception as exc:  # noqa: BLE001  (jinja2 errors, raise_exception(...) in the template)
        first = (str(exc).splitlines() or [""])[0]
        raise TemplateError(f"the chat template cannot render this conversation ({type(exc).__name__}: {first})") from None
    if not isinstance(text, str):
        raise TemplateError("the chat template did not render text")
    return text


def _renders(tokenizer, messages: Sequence[dict], add_generation_prompt: bool = False) -> str | None:
    try:
        return apply_template(tokenizer, messages, add_generation_prompt)
    except TemplateError:
        return None


def _leading_specials(tokenizer, text: str, specials: set[int]) -> tuple[str, tuple[int, ...]]:
    """The run of special tokens at the start of ``text`` -> (their text, their ids)."""
    enc = _text_tokenizer(tokenizer)(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, end = [], 0
    for token, (start, stop) in zip(enc["input_ids"], enc["offset_mapping"]):
        if token not in specials or start != end:
            break
        ids.append(token)
        end = stop
    return text[:end], tuple(ids)


def _bos(tokenizer, probe_text: str) -> tuple[str, int | None]:
    """(BOS string, id) the model's sequences start with, or ("", None) (see the module docstring)."""
    tok = _text_tokenizer(tokenizer)
    bos, bos_id = tok.bos_token, tok.bos_token_id
    if not bos or bos_id is None:
        return "", None
    body = probe_text
    while body.startswith(bos):
        body = body[len(bos) :]
    if bos in body:
        return "", None  # the template uses it as a turn marker (ChatML's <|im_start|>)
    added = tok("x", add_special_tokens=True)["input_ids"]
    if body != probe_text or (added and added[0] == bos_id):
        return bos, bos_id
    return "", None


def read_template(tokenizer) -> TemplateInfo:
    """Probe the tokenizer's chat template -> :class:`TemplateInfo`; :class:`TemplateError` when it
    has no template, no assistant role, or writes no special token after a reply."""
    tok = _text_tokenizer(tokenizer)
    if not getattr(tok, "is_fast", False):
        raise DSAError("masking needs a fast (Rust) tokenizer: offsets come from it")
    pair = [{"role": "user", "content": _PROBE_USER}, {"role": "assistant", "content": _PROBE_REPLY}]
    text = apply_template(tok, pair)
    if _PROBE_REPLY not in text:
        raise TemplateError("the chat template has no assistant role (an assistant message is not rendered)")
    specials = special_ids(tok)
    after = text[text.rindex(_PROBE_REPLY) + len(_PROBE_REPLY) :]
    end_of_turn, end_ids = _leading_specials(tok, after, specials)
    if not end_ids:
        raise TemplateError(
            f"the chat template writes no special end-of-turn token after a reply (it writes {after[:20]!r}): "
            "the model could not be taught where its turn ends"
        )
    with_system = _renders(tok, [{"role": "system", "content": _PROBE_SYSTEM}] + pair)
    system_role = with_system is not None and _PROBE_SYSTEM in with_system
    bos, bos_id = _bos(tok, text)
    written = set()
    for rendered in (text, with_system, _renders(tok, pair[:1], add_generation_prompt=True)):
        if rendered:
            enc = tok(rendered, add_special_tokens=False, return_offsets_mapping=True)
            written.update(rendered[s:e] for t, (s, e) in zip(enc["input_ids"], enc["offset_mapping"]) if t in specials)
    named = {tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token}
    controls = {c for c in written | named | set(KNOWN_CHAT_CONTROLS) if isinstance(c, str) and c.strip()}
    return TemplateInfo(
        end_of_turn=end_of_turn,
        end_of_turn_ids=end_ids,
        bos=bos,
        bos_id=bos_id,
        system_role=system_role,
        controls=tuple(sorted(controls, key=lambda c: (-len(c), c))),
    )


def check_template_controls(messages: Sequence[dict], info: TemplateInfo) -> None:
    """Raise :class:`ControlTokenError` if a message text holds one of ``info.controls``."""
    pattern = info.control_pattern()
    for index, message in enumerate(messages):
        content = message.get("content")
        if isinstance(content, str):
            found = pattern.search(content)
            if found:
                raise ControlTokenError(
                    f"message {index} ({message.get('role')}) contains the control token {found.group(0)}"
                )


def template_messages(messages: Sequence[dict], info: TemplateInfo) -> list[dict]:
    """Validate ``messages`` (system?, then user/assistant alternating from user) -> the list the
    template renders: the system prompt folded into the first user turn when the template has no
    system role. Raises :class:`ConversationError` / :class:`ControlTokenError`."""
    check_message_shapes(messages)
    check_template_controls(messages, info)
    turns = [{"role": m["role"], "content": m["content"]} for m in messages]
    system = turns.pop(0) if turns[0]["role"] == "system" else None
    for index, message in enumerate(turns):
        expected = "user" if index % 2 == 0 else "assistant"
        if message["role"] != expected:
            raise ConversationError(
                f"message roles must alternate user/assistant: turn {index} is {message['role']!r}"
            )
    if system is not None:
        if info.system_role:
            turns.insert(0, system)
        elif turns:
            turns[0] = {"role": "user", "content": system["content"].strip() + "\n\n" + turns[0]["content"]}
        else:
            raise ConversationError("a system message needs a user turn to fold into (the template has no system role)")
    return turns


def _with_bos(text: str, info: TemplateInfo) -> tuple[str, int]:
    """``text`` with exactly one leading BOS string -> (text, shift of every offset)."""
    if not info.bos:
        return text, 0
    body = text
    while body.startswith(info.bos):
        body = body[len(info.bos) :]
    return info.bos + body, len(info.bos) - (len(text) - len(body))


def _reply_span(text: str, prompt: str, content: str, end_of_turn: str, after: int) -> tuple[int, int]:
    """Where the reply ``content`` (as written, or trimmed) + ``end_of_turn`` sits in ``text`` -> (start, end)."""
    exact = text.startswith(prompt) and len(prompt) >= after
    anchor = len(prompt) if exact else after
    best = None
    for variant in dict.fromkeys((content, content.strip(), content.lstrip(), content.rstrip())):
        found = text.find(variant + end_of_turn, anchor)
        if found < 0 or (exact and found != anchor):
            continue
        span = (found, found + len(variant) + len(end_of_turn))
        if best is None or (span[0], -span[1]) < (best[0], -best[1]):
            best = span
    if best is None:
        raise TemplateError(
            "the chat template does not write this reply verbatim after its generation prompt "
            f"(followed by {end_of_turn!r})"
        )
    return best


def render_with_template(messages: Sequence[dict], tokenizer, info: TemplateInfo | None = None) -> RenderedConversation:
    """Messages -> :class:`adapters.chat.RenderedConversation` rendered by the tokenizer's template.

    ``text``: the template's rendering with exactly one leading BOS string (if the model has a BOS).
    ``reply_spans``: half-open character spans, one per assistant message, each the reply as the
    template writes it (trimmed or not) plus the end-of-turn text right after it.
    """
    info = info or read_template(tokenizer)
    turns = template_messages(messages, info)
    raw = apply_template(tokenizer, turns)
    text, shift = _with_bos(raw, info)
    spans: list[tuple[int, int]] = []
    after = 0
    for index, message in enumerate(turns):
        if message["role"] != "assistant":
            continue
        prompt = apply_template(tokenizer, turns[:index], add_generation_prompt=True)
        start, end = _reply_span(raw, prompt, message["content"], info.end_of_turn, after)
        spans.append((start + shift, end + shift))
        after = end
    return RenderedConversation(text=text, reply_spans=tuple(spans))


def template_prompt(messages: Sequence[dict], tokenizer, generation_prefill: str = "", info: TemplateInfo | None = None) -> str:
    """The inference prompt from the tokenizer's template: every turn but a final assistant one,
    rendered with ``add_generation_prompt=True``, then ``generation_prefill`` (e.g. ``"<think>\\n"``)."""
    info = info or read_template(tokenizer)
    turns = list(messages)
    if turns and isinstance(turns[-1], dict) and turns[-1].get("role") == "assistant":
        turns = turns[:-1]
    text, _ = _with_bos(apply_template(tokenizer, template_messages(turns, info), add_generation_prompt=True), info)
    return text + generation_prefill


def model_prompt(messages: Sequence[dict], tokenizer, generation_prefill: str = "") -> str:
    """The inference prompt for this tokenizer: :func:`adapters.chat.render_prompt` on the Gemma path,
    :func:`template_prompt` otherwise. Tokenize it with ``add_special_tokens=False``."""
    if uses_gemma_path(tokenizer):
        return render_prompt(messages, generation_prefill=generation_prefill)
    return template_prompt(messages, tokenizer, generation_prefill)


def stop_token_ids(tokenizer) -> tuple[int, ...]:
    """Ids generation must stop on: the template's end-of-turn token(s), then the EOS.

    Gemma path: :data:`adapters.chat.STOP_TOKEN_IDS` (106, 1). ChatML (SmolLM2): ``<|im_end|>``;
    Llama 3: ``<|eot_id|>`` and ``<|end_of_text|>``.
    """
    if uses_gemma_path(tokenizer):
        return tuple(STOP_TOKEN_IDS)
    info = read_template(tokenizer)
    eos = _text_tokenizer(tokenizer).eos_token_id
    ids = list(info.end_of_turn_ids) + ([eos] if isinstance(eos, int) else list(eos or []))
    return tuple(dict.fromkeys(ids))


def generation_stop_kwargs(tokenizer) -> dict:
    """``{"eos_token_id": [...], "pad_token_id": id}`` for ``model.generate(**...)`` and TRL's
    ``GRPOConfig(generation_kwargs=...)``: generation stops at the end of the model's turn."""
    tok = _text_tokenizer(tokenizer)
    stops = list(stop_token_ids(tok))
    pad = tok.pad_token_id if tok.pad_token_id is not None else stops[-1]
    return {"eos_token_id": stops, "pad_token_id": pad}


def set_generation_stops(model, tokenizer) -> tuple[int, ...]:
    """Write the tokenizer's stop ids into ``model.generation_config`` -> the ids.

    TRL's GRPOTrainer reads its rollout stop ids (and the completion mask after them) from
    ``model.generation_config.eos_token_id`` when it is built, so call this before building it;
    ``model.generate`` without arguments then stops at the end of the turn too.
    """
    kwargs = generation_stop_kwargs(tokenizer)
    model.generation_config.eos_token_id = list(kwargs["eos_token_id"])
    model.generation_config.pad_token_id = kwargs["pad_token_id"]
    return tuple(kwargs["eos_token_id"])


# ---------------------------------------------------------------------------- notebooks: which template

# Plain ChatML (``<|im_start|>role\n...<|im_end|>\n``), written verbatim: the template a ChatML model
# (Qwen, SmolLM2) falls back to when the template it ships rewrites the DIPG reply (Qwen3's moves the
# ``<think>`` block and adds a blank line after ``</think>``) or a notebook replaced it with its own.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
CHATML_MARKERS = ("<|im_start|>", "<|im_end|>")

# A DIPG-shaped conversation (context + question, the three-tag reply): what a template must express.
PROBE_CONVERSATION = (
    {"role": "system", "content": "You are a careful clinical assistant."},
    {"role": "user", "content": "<context>\nThe protocol caps the dose at 2 mg.\n</context>\n\n<question>\nWhat is the cap?\n</question>"},
    {"role": "assistant", "content": "<think>\nThe context states the cap.\n</think>\n<proof>\n- \"The protocol caps the dose at 2 mg.\"\n</proof>\n<answer>\n2 mg.\n</answer>"},
)


def template_name(tokenizer) -> str:
    """The template family by its end of turn: ``"Gemma"``, ``"ChatML"``, ``"Llama-3"`` or ``"the model's own"``."""
    if uses_gemma_path(tokenizer):
        return "Gemma"
    end = read_template(tokenizer).end_of_turn
    return {"<|im_end|>": "ChatML", "<|eot_id|>": "Llama-3"}.get(end, "the model's own")


def _expresses(tokenizer, messages: Sequence[dict]) -> str | None:
    """None when the tokenizer's current template renders ``messages`` with each reply verbatim, else why not."""
    try:
        render_with_template(messages, tokenizer)
    except DSAError as exc:
        return str(exc)
    return None


def choose_chat_template(tokenizer, messages: Sequence[dict] = PROBE_CONVERSATION) -> str:
    """Set the chat template the kit renders, masks and stops with -> a one-line description.

    Gemma tokenizer: the kit's Gemma template (as always). Otherwise the tokenizer's own template when it
    expresses ``messages`` (a DIPG conversation: assistant role, special end-of-turn token, the reply
    verbatim after the generation prompt); else :data:`CHATML_TEMPLATE` when the vocabulary has ChatML's
    special turn markers; else :class:`TemplateError`.
    """
    tok = _text_tokenizer(tokenizer)
    if uses_gemma_path(tok):
        tok.chat_template = GEMMA_CHAT_TEMPLATE
        return "Gemma (the kit's Gemma-3 template)"
    why = _expresses(tok, messages) if getattr(tok, "chat_template", None) else "the tokenizer has no chat template"
    if why is None:
        return f"{template_name(tok)} (the model's own template)"
    vocab = tok.get_vocab()
    specials = special_ids(tok)
    if all(marker in vocab and vocab[marker] in specials for marker in CHATML_MARKERS):
        tok.chat_template = CHATML_TEMPLATE
        if _expresses(tok, messages) is None:
            return f"ChatML (the kit's plain ChatML; the model's own cannot express a DIPG row: {why})"
    raise TemplateError(f"no chat template can express a DIPG row for this tokenizer ({why}); set tokenizer.chat_template")


def describe_stops(tokenizer) -> str:
    """The stop ids as tokens: ``"<|im_end|> (2)"``; several joined by ``", "``."""
    tok = _text_tokenizer(tokenizer)
    return ", ".join(f"{tok.convert_ids_to_tokens(i)} ({i})" for i in stop_token_ids(tok))

