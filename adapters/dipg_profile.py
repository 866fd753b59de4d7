"""The length and structure profile of DIPG rows, the way FIELD_NOTES §7 describes the real ones.

:func:`profile` ``(rows) -> dict``: characters (min / median / max) of context, question, think,
proof and answer; context paragraphs (blocks separated by a blank line); the share of golds whose
``<think>`` is numbered steps, whose ``<proof>`` is all bulleted lines, whose proof quotes the
context verbatim, whose proof elides (``...``); the share of declining answers; the type mix.
:func:`markdown_table` lays several profiles side by side. :data:`REAL` holds FIELD_NOTES §7's
measured figures of the real rows (the only ones we have: ranges and a few medians) and
:data:`REAL_RANGES` the ranges a stand-in should keep within.

Rows are read with the strict parser; a row whose reply is not strict is counted under
``unparsed`` and left out of the reply figures.
"""

from __future__ import annotations

import re
import statistics
from typing import Iterable

from .dataset import ROW_TYPES
from .dsa_format import parse_strict
from .gym_scorer import split_user_content

FIELDS = ("context", "question", "think", "proof", "answer")
NUMBERED_STEP_RE = re.compile(r"^\s*\d+[.)]\s+\S", re.MULTILINE)
BULLET_RE = re.compile(r"^\s*(?:[-*\u2022])\s+")
QUOTE_CHARS = "\"'\u201c\u201d\u2018\u2019"
ELISION_RE = re.compile(r"\.\.\.|\u2026")
# What counts as declining: the phrases the real golds use for a missing or contradicted fact.
DECLINE_PHRASES = (
    "does not contain", "do not contain", "not contain", "does not provide", "does not mention", "not mentioned",
    "not provided", "no information", "cannot be determined", "cannot determine", "cannot be decided",
    "cannot be calculated", "cannot be classified", "conflicting", "contradictory", "contradict",
)

# FIELD_NOTES §7 (real upstream rows): (min, median, max) characters where measured, None where not.
REAL = {
    "context": (445, 1556, 3891),
    "question": (30, None, 297),
    "think": (204, None, 1406),
    "proof": (36, None, 1129),
    "answer": (None, 124, None),
    "paragraphs": (1, None, 6),
    "numbered_think": 0.40,
    "bulleted_proof": 1 / 3,
    "elided_proof": 0.40,
    "declining": 0.40,
    "types": {"reasoning": 0.4, "refusal": 0.2, "haystack": 0.2, "anti_knowledge": 0.2},  # FIELD_NOTES §1
}
REAL_RANGES = {name: (low, high) for name, (low, _, high) in
               ((k, REAL[k]) for k in ("context", "question", "think", "proof", "paragraphs"))}


def paragraphs(context: str) -> int:
    """Non-empty blocks separated by one or more blank lines."""
    return len([block for block in re.split(r"\n\s*\n", context) if block.strip()])


def is_numbered(think: str) -> bool:
    """At least two lines that start ``1.`` / ``2)`` …: reasoning written as numbered steps."""
    return len(NUMBERED_STEP_RE.findall(think)) >= 2


def proof_lines(proof: str) -> list[str]:
    return [line for line in proof.splitlines() if line.strip()]


def is_bulleted(proof: str) -> bool:
    """Every non-empty proof line is a bullet (``- …``, ``* …``, ``• …``)."""
    lines = proof_lines(proof)
    return bool(lines) and all(BULLET_RE.match(line) for line in lines)


def quoted_spans(proof: str) -> list[str]:
    """Each proof line without its bullet and surrounding quotes: what the line claims the context says."""
    spans = []
    for line in proof_lines(proof):
        text = BULLET_RE.sub("", line).strip()
        if len(text) >= 2 and text[0] in QUOTE_CHARS and text[-1] in QUOTE_CHARS:
            text = text[1:-1]
        spans.append(text)
    return spans


def is_verbatim(proof: str, context: str) -> bool:
    """Every proof line (bullet and quotes removed) is a substring of the context."""
    spans = quoted_spans(proof)
    return bool(spans) and all(span in context for span in spans)


def is_declining(answer: str) -> bool:
    lowered = answer.lower()
    return any(phrase in lowered for phrase in DECLINE_PHRASES)


def _spread(values: list[int]) -> dict:
    if not values:
        return {"min": None, "median": None, "max": None}
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def profile(rows: Iterable[dict]) -> dict:
    """Rows -> ``{"rows", "unparsed", "chars": {field: {min, median, max}}, "paragraphs", shares…, "types"}``."""
    chars: dict[str, list[int]] = {name: [] for name in FIELDS}
    blocks: list[int] = []
    flags = {"numbered_think": 0, "bulleted_proof": 0, "verbatim_proof": 0, "elided_proof": 0, "declining": 0}
    types: dict[str, int] = {}
    total = unparsed = 0
    for row in rows:
        total += 1
        row_type = row.get("metadata", {}).get("type", "?")
        types[row_type] = types.get(row_type, 0) + 1
        messages = row["messages"]
        context, question = split_user_content(messages[0]["content"])
        chars["context"].append(len(context))
        chars["question"].append(len(question))
        blocks.append(paragraphs(context))
        reply = parse_strict(messages[-1]["content"])
        if not reply.ok:
            unparsed += 1
            continue
        for name in ("think", "proof", "answer"):
            chars[name].append(len(getattr(reply, name)))
        flags["numbered_think"] += is_numbered(reply.think)
        flags["bulleted_proof"] += is_bulleted(reply.proof)
        flags["verbatim_proof"] += is_verbatim(reply.proof, context)
        flags["elided_proof"] += bool(ELISION_RE.search(reply.proof))
        flags["declining"] += is_declining(reply.answer)
    parsed = total - unparsed
    ordered = {name: types[name] for name in ROW_TYPES if name in types}
    ordered.update({name: count for name, count in sorted(types.items()) if name not in ordered})
    return {
        "rows": total,
        "unparsed": unparsed,
        "chars": {name: _spread(values) for name, values in chars.items()},
        "paragraphs": _spread(blocks),
        **{name: (count / parsed if parsed else None) for name, count in flags.items()},
        "types": {name: count / total for name, count in ordered.items()} if total else {},
    }


def _number(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def _percent(value) -> str:
    return "–" if value is None else f"{100 * value:.0f} %"


def _spread_cell(spread) -> str:
    if isinstance(spread, tuple):
        low, mid, high = spread
    else:
        low, mid, high = spread["min"], spread["median"], spread["max"]
    return " / ".join(_number(v) for v in (low, mid, high))


def _types_cell(types: dict) -> str:
    return ", ".join(f"{name} {100 * share:.0f}" for name, share in types.items())


def markdown_table(columns: dict[str, dict]) -> str:
    """Profiles by column name (a :func:`profile` dict, or :data:`REAL`) -> one Markdown table, metrics as rows."""
    names = list(columns)
    lines = ["| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]

    def add(label: str, cell) -> None:
        lines.append(f"| {label} | " + " | ".join(cell(columns[name]) for name in names) + " |")

    add("rows", lambda p: _number(p.get("rows")))
    for field in FIELDS:
        add(f"{field} chars (min / median / max)", lambda p, f=field: _spread_cell(p["chars"][f] if "chars" in p else p[f]))
    add("context paragraphs (min / median / max)", lambda p: _spread_cell(p["paragraphs"]))
    add("think as numbered steps", lambda p: _percent(p.get("numbered_think")))
    add('proof all bulleted (`- "…"`)', lambda p: _percent(p.get("bulleted_proof")))
    add("proof quotes the context verbatim", lambda p: _percent(p.get("verbatim_proof")))
    add("proof elides (`...`)", lambda p: _percent(p.get("elided_proof")))
    add("declining answers", lambda p: _percent(p.get("declining")))
    add("type mix (%)", lambda p: _types_cell(p.get("types", {})))
    return "\n".join(lines) + "\n"
