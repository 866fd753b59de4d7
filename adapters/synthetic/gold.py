"""A v2 row before rendering (:class:`Draft`) and how its gold reply is written.

The gold's ``<think>`` is the same reasoning steps either as numbered lines (``1. …``) or as one
prose paragraph; the ``<proof>`` quotes whole context sentences, one ``- "sentence"`` line each,
verbatim, in reading order; the ``<answer>`` is a sentence or two. :func:`render_draft` checks that every proof
sentence is in the context (a broken template fails loudly at generation time, not in training).

Shapes: ``Draft`` -> ``(user content, assistant content, context)`` strings.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..dsa_format import render_reply
from ..synthetic_dipg import user_content
from .draws import context_text


@dataclass
class Draft:
    """One row's parts: context paragraphs (lists of sentences), question, think steps, proof, answer."""

    paragraphs: list[list[str]]
    question: str
    steps: list[str]
    proof: list[str]
    answer: str

    @property
    def context(self) -> str:
        return context_text(self.paragraphs)


def render_think(steps: list[str], numbered: bool) -> str:
    """Reasoning steps -> ``"1. a\\n2. b"`` (numbered) or ``"a b"`` (prose)."""
    if numbered:
        return "\n".join(f"{i}. {step}" for i, step in enumerate(steps, start=1))
    return " ".join(steps)


def render_proof(sentences: list[str]) -> str:
    """Quoted context sentences -> ``- "s1"\\n- "s2"`` (one bulleted quote per line)."""
    return "\n".join(f'- "{sentence}"' for sentence in sentences)


def render_draft(draft: Draft, numbered: bool) -> tuple[str, str, str]:
    """``Draft`` -> ``(user content, assistant content, context)``; every proof sentence must be quoted verbatim."""
    context = draft.context
    for sentence in draft.proof:
        if sentence not in context or '"' in sentence:
            raise AssertionError(f"proof sentence is not a context sentence: {sentence!r}")
    in_order = sorted(dict.fromkeys(draft.proof), key=context.index)  # quoted in reading order, once each
    reply = render_reply(render_think(draft.steps, numbered), render_proof(in_order), draft.answer)
    return user_content(context, draft.question), reply, context
