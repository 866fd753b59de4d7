"""The dual-stream reply format: ``<think>…</think> <proof>…</proof> <answer>…</answer>``.

Three things live here:

* :func:`render_reply` builds a reply from its three parts, exactly as the dataset writes it.
* :func:`parse_strict` accepts only think -> proof -> answer, each exactly once, closed, non-empty,
  with only whitespace between and around the blocks and nothing after ``</answer>`` but whitespace
  and the end of turn. It never raises: it returns a :class:`StrictParse` whose ``errors`` say
  precisely what is wrong (one :class:`FormatIssue` per problem, the first is the primary one).
* :func:`parse_lenient` extracts whatever blocks it can find, for scoring replies that are not strict.

:func:`restore_prefilled_think` puts back an opening ``<think>`` that the prompt pre-filled, so
that a completion generated after ``<start_of_turn>model\\n<think>\\n`` is judged like a whole reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TAGS = ("think", "proof", "answer")
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
PROOF_OPEN, PROOF_CLOSE = "<proof>", "</proof>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"

# Failure kinds, in the order the evaluator reports them.
MISSING_TAG = "missing_tag"
WRONG_ORDER = "wrong_order"
UNCLOSED = "unclosed"
EMPTY = "empty"
DUPLICATED = "duplicated"
TRAILING_TEXT = "trailing_text"
LEADING_TEXT = "leading_text"
STRAY_TEXT = "stray_text"
FAILURE_KINDS = (
    MISSING_TAG,
    WRONG_ORDER,
    UNCLOSED,
    EMPTY,
    DUPLICATED,
    TRAILING_TEXT,
    LEADING_TEXT,
    STRAY_TEXT,
)

# What may follow </answer>: whitespace, then optionally the end of turn and/or the end of text, as the
# chat families write them (Gemma, ChatML, Llama 3); adapters.chat_template reads a template's own.
END_OF_TURN_MARKERS = ("<end_of_turn>", "<eos>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>")

_TAG_RE = re.compile(r"<(/?)(think|proof|answer)>")


@dataclass(frozen=True)
class FormatIssue:
    """One thing wrong with a reply. ``kind`` is one of :data:`FAILURE_KINDS`."""

    kind: str
    tag: str | None
    message: str


@dataclass(frozen=True)
class StrictParse:
    """Result of :func:`parse_strict`. The parts are set only when ``ok`` is true."""

    ok: bool
    think: str | None = None
    proof: str | None = None
    answer: str | None = None
    errors: tuple[FormatIssue, ...] = field(default_factory=tuple)

    @property
    def primary_kind(self) -> str | None:
        """The kind of the first issue (``None`` for a well-formed reply)."""
        return self.errors[0].kind if self.errors else None

    def describe(self) -> str:
        """One line: ``ok`` or every issue, separated by ``; ``."""
        return "ok" if self.ok else "; ".join(issue.message for issue in self.errors)


@dataclass(frozen=True)
class LenientParse:
    """Result of :func:`parse_lenient`: each part, or ``None`` when nothing could be found."""

    think: str | None
    proof: str | None
    answer: str | None

    @property
    def tags_present(self) -> dict[str, bool]:
        return {"think": self.think is not None, "proof": self.proof is not None, "answer": self.answer is not None}


def render_reply(think: str, proof: str, answer: str) -> str:
    """Render the assistant content the way the DIPG dataset writes it.

    >>> render_reply("a", "b", "c")
    '<think>\\na\\n</think>\\n\\n<proof>\\nb\\n</proof>\\n\\n<answer>\\nc\\n</answer>'
    """
    return (
        f"{THINK_OPEN}\n{think.strip()}\n{THINK_CLOSE}\n\n"
        f"{PROOF_OPEN}\n{proof.strip()}\n{PROOF_CLOSE}\n\n"
        f"{ANSWER_OPEN}\n{answer.strip()}\n{ANSWER_CLOSE}"
    )


def _strip_end_of_turn(tail: str) -> str:
    """Remove whitespace and end-of-turn markers from the end of ``tail``."""
    rest = tail.rstrip()
    changed = True
    while changed:
        changed = False
        for marker in END_OF_TURN_MARKERS:
            if rest.endswith(marker):
                rest = rest[: -len(marker)].rstrip()
                changed = True
    return rest


def parse_strict(text: str) -> StrictParse:
    """Check that ``text`` is exactly one think, one proof and one answer block, in that order.

    Returns a :class:`StrictParse`; ``errors`` lists every problem found, most fundamental first
    (missing, duplicated, unclosed tags before order, order before empty blocks and stray text).
    """
    events = [(m.start(), m.end(), m.group(1) == "/", m.group(2)) for m in _TAG_RE.finditer(text)]
    issues: list[FormatIssue] = []

    for tag in TAGS:
        opens = sum(1 for _, _, closing, t in events if t == tag and not closing)
        closes = sum(1 for _, _, closing, t in events if t == tag and closing)
        if opens == 0 and closes == 0:
            issues.append(FormatIssue(MISSING_TAG, tag, f"missing <{tag}> block"))
        elif opens > 1 or closes > 1:
            issues.append(FormatIssue(DUPLICATED, tag, f"<{tag}> appears {max(opens, closes)} times"))
        elif opens == 1 and closes == 0:
            issues.append(FormatIssue(UNCLOSED, tag, f"<{tag}> is never closed"))
        elif opens == 0 and closes == 1:
            issues.append(FormatIssue(MISSING_TAG, tag, f"</{tag}> has no opening <{tag}>"))
    if issues:
        return StrictParse(ok=False, errors=tuple(issues))

    expected = [(False, "think"), (True, "think"), (False, "proof"), (True, "proof"), (False, "answer"), (True, "answer")]
    seen = [(closing, tag) for _, _, closing, tag in events]
    if seen != expected:
        order = " ".join(f"<{'/' if c else ''}{t}>" for c, t in seen)
        return StrictParse(ok=False, errors=(FormatIssue(WRONG_ORDER, None, f"tags out of order: {order}"),))

    parts: dict[str, str] = {}
    for index, tag in enumerate(TAGS):
        open_end = events[2 * index][1]
        close_start = events[2 * index + 1][0]
        content = text[open_end:close_start].strip()
        if not content:
            issues.append(FormatIssue(EMPTY, tag, f"<{tag}> block is empty"))
        parts[tag] = content

    if text[: events[0][0]].strip():
        issues.append(FormatIssue(LEADING_TEXT, "think", "text before <think>"))
    for index in (1, 3):
        between = text[events[index][1] : events[index + 1][0]]
        if between.strip():
            after, before = events[index][3], events[index + 1][3]
            issues.append(FormatIssue(STRAY_TEXT, before, f"text between </{after}> and <{before}>"))
    if _strip_end_of_turn(text[events[-1][1] :]).strip():
        issues.append(FormatIssue(TRAILING_TEXT, "answer", "text after </answer>"))

    if issues:
        return StrictParse(ok=False, errors=tuple(issues))
    return StrictParse(ok=True, think=parts["think"], proof=parts["proof"], answer=parts["answer"])


def _lenient_block(text: str, tag: str) -> str | None:
    """Content of the first ``<tag>`` block; an unclosed block runs to the next tag or the end."""
    opening = text.find(f"<{tag}>")
    if opening < 0:
        return None
    start = opening + len(tag) + 2
    closing = text.find(f"</{tag}>", start)
    if closing < 0:
        following = _TAG_RE.search(text, start)
        closing = following.start() if following else len(text)
    return text[start:closing].strip()


def parse_lenient(text: str) -> LenientParse:
    """Extract what can be extracted. Untagged text counts as the answer, as the gym's parser does."""
    think = _lenient_block(text, "think")
    proof = _lenient_block(text, "proof")
    answer = _lenient_block(text, "answer")
    if answer is None and think is None and proof is None:
        bare = _strip_end_of_turn(text).strip()
        answer = bare or None
    return LenientParse(think=think, proof=proof, answer=answer)


def restore_prefilled_think(completion: str, prefill: str = THINK_OPEN) -> str:
    """Prepend the opening tag when the prompt pre-filled it and the completion starts inside it.

    A completion that already opens with ``<think>`` (after whitespace) is returned unchanged, so
    the function is safe to apply whether or not the prompt pre-filled anything.
    """
    if completion.lstrip().startswith(THINK_OPEN):
        return completion
    if not prefill.strip():
        return completion
    return prefill.rstrip("\n") + "\n" + completion.lstrip("\n")
