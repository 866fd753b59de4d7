"""Metrics over model replies: strict format, lenient format, the gym's rubric, proof grounding.

Shapes:

* :func:`load_responses` ``FILE.jsonl`` -> ``[{"key": id-or-index, "response": str, "line": n}]``;
* :func:`align_responses` (test rows, response records) -> ``[(row_index, response)]`` in test-split
  order (a subset of the test split is allowed; every response must name exactly one row);
* :func:`evaluate_row` (row, response) -> one per-row result dict (``results.jsonl``);
* :func:`summarise` (results) -> ``metrics.json`` dict: ``overall``, ``by_type`` and ``gold`` (the
  gold replies' own gym figures on the same rows: the ceiling, FIELD_NOTES §2);
* :func:`gold_ceiling` (rows) -> the same ``gold`` figures for any rows, without replies.

Per-row ``proof_grounded`` is the kit's own check, separate from the gym's fuzzy one: every span the
proof quotes (text in double quotes; without quotes, each line, with ``...`` splitting a line) must
occur verbatim in the context after collapsing whitespace. ``None`` when the reply has no proof.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable, Sequence

from .dsa_format import FAILURE_KINDS, TAGS, parse_lenient, parse_strict, restore_prefilled_think
from .errors import DatasetError
from .gym_scorer import BRANCHES, GymScore, GymScorer, gold_aware_reward, ground_truth_from_row, missed_decline

DATASET_TYPES = ("reasoning", "refusal", "haystack", "anti_knowledge")
GYM_RATES = ("safe", "hallucination", "refusal", "consistency", "format_error")
_ROUND = 6

_QUOTED_RE = re.compile(r"[\"\u201c\u201d]([^\"\u201c\u201d]+)[\"\u201c\u201d]")
_ELLIPSIS_RE = re.compile(r"\.\.\.|\u2026|\[\.\.\.\]")
_BULLET_RE = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+")


# ---------------------------------------------------------------------------------------------
# Responses file


def load_responses(path: str | Path) -> list[dict]:
    """Read a responses JSONL file: each line ``{"id": str | "index": int, "response": str}``.

    Raises :class:`DatasetError` naming the file and line for: a missing or unreadable file, an
    empty file, a non-JSON line, a line that is not an object, a missing/non-string ``response``,
    a line with neither ``id`` nor ``index``, or a duplicated id.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read responses file ({exc.__class__.__name__})") from exc
    records: list[dict] = []
    seen: dict = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path} line {number}: not valid JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise DatasetError(f"{path} line {number}: expected a JSON object")
        if not isinstance(record.get("response"), str):
            raise DatasetError(f"{path} line {number}: 'response' is missing or not a string")
        if record.get("id") is not None:
            key = ("id", str(record["id"]))
        elif isinstance(record.get("index"), int) and not isinstance(record.get("index"), bool):
            key = ("index", record["index"])
        else:
            raise DatasetError(f"{path} line {number}: no 'id' (or integer 'index') naming the dataset row")
        if key in seen:
            raise DatasetError(f"{path} line {number}: duplicate {key[0]} {key[1]!r} (first on line {seen[key]})")
        seen[key] = number
        records.append({"key": key, "response": record["response"], "line": number})
    if not records:
        raise DatasetError(f"{path}: responses file is empty")
    return records


def row_id(row: dict, index: int) -> str:
    """The row's ``metadata.id``, or ``"row-<index>"`` when the row has none."""
    metadata = row.get("metadata") or {}
    value = metadata.get("id") if isinstance(metadata, dict) else None
    return str(value) if value not in (None, "") else f"row-{index}"


def row_type(row: dict) -> str:
    metadata = row.get("metadata") or {}
    value = metadata.get("type") if isinstance(metadata, dict) else None
    return str(value) if value else "unknown"


def align_responses(rows: Sequence[dict], records: Sequence[dict], source: str = "responses") -> list[tuple[int, str]]:
    """Match response records to test rows -> ``[(row_index, response)]`` sorted by row index.

    An ``id`` must equal one row's ``metadata.id``; an ``index`` must be a valid position. Two
    records naming the same row (one by id, one by index) are a duplicate.
    """
    by_id = {row_id(row, i): i for i, row in enumerate(rows)}
    matched: dict[int, tuple[str, int]] = {}
    for record in records:
        kind, value = record["key"]
        if kind == "id":
            if value not in by_id:
                raise DatasetError(f"{source} line {record['line']}: id {value!r} is not in the dataset's test split")
            index = by_id[value]
        else:
            if not 0 <= value < len(rows):
                raise DatasetError(
                    f"{source} line {record['line']}: index {value} is outside the test split (0..{len(rows) - 1})"
                )
            index = value
        if index in matched:
            raise DatasetError(
                f"{source} line {record['line']}: row {index} already has a response (line {matched[index][1]})"
            )
        matched[index] = (record["response"], record["line"])
    return [(index, matched[index][0]) for index in sorted(matched)]


# ---------------------------------------------------------------------------------------------
# Per-row evaluation


def _normalise(text: str) -> str:
    return " ".join(text.split())


def proof_spans(proof: str) -> list[str]:
    """The spans a proof quotes: double-quoted strings, else its lines split at ellipses."""
    quoted = [s.strip() for s in _QUOTED_RE.findall(proof) if s.strip()]
    if quoted:
        return quoted
    spans = []
    for line in proof.splitlines():
        line = _BULLET_RE.sub("", line).strip()
        for piece in _ELLIPSIS_RE.split(line):
            piece = piece.strip().strip("'\"\u2018\u2019\u201c\u201d").strip()
            if piece:
                spans.append(piece)
    return spans


def proof_is_grounded(proof: str | None, context: str) -> bool | None:
    """Whether every span of ``proof`` occurs verbatim (whitespace collapsed) in ``context``."""
    if proof is None or not proof.strip():
        return None
    spans = proof_spans(proof)
    haystack = _normalise(context)
    return bool(spans) and all(_normalise(span) in haystack for span in spans)


def evaluate_row(
    row: dict, response: str, index: int, scorer: GymScorer, prefilled_think: bool = False, gold_score: GymScore | None = None
) -> dict:
    """One dataset row + one reply -> the per-row result written to ``results.jsonl``.

    ``prefilled_think`` restores a pre-filled ``<think>`` before any check (a no-op on a reply
    that already opens with it). ``gold_score`` is the gym's verdict on the row's gold reply.
    """
    truth = ground_truth_from_row(row, where=f"test row {index}")
    reply = restore_prefilled_think(response) if prefilled_think else response
    strict = parse_strict(reply)
    lenient = parse_lenient(reply)
    kinds = []
    for issue in strict.errors:
        if issue.kind not in kinds:
            kinds.append(issue.kind)
    gym = scorer.score(reply, truth)
    gold = gold_score if gold_score is not None else scorer.score(truth.gold, truth)
    return {
        "index": index,
        "id": row_id(row, index),
        "type": row_type(row),
        "strict_ok": strict.ok,
        "strict_primary": strict.primary_kind,
        "strict_kinds": kinds,
        "strict_detail": strict.describe(),
        # The opening tag written in the reply, not what the lenient parser found: bare text counts as
        # the gym's answer, but a model that never writes "<answer>" has not learnt the tag.
        "tags_present": {tag: f"<{tag}>" in reply for tag in TAGS},
        "lenient_ok": all(bool((getattr(lenient, tag) or "").strip()) for tag in TAGS),
        "proof_grounded": proof_is_grounded(lenient.proof, truth.context),
        "gym": gym.as_dict(),
        "gold_gym": gold.as_dict(),
        "response": reply,
    }


def evaluate_rows(
    rows: Sequence[dict], pairs: Iterable[tuple[int, str]], prefilled_think: bool = False, progress=None
) -> list[dict]:
    """Evaluate ``(row_index, response)`` pairs against ``rows`` -> per-row results, in pair order."""
    scorer = GymScorer()
    results = []
    for index, response in pairs:
        results.append(evaluate_row(rows[index], response, index, scorer, prefilled_think))
        if progress is not None:
            progress(1)
    return results


# ---------------------------------------------------------------------------------------------
# Aggregation


def _rate(values: Sequence[bool]) -> float | None:
    return round(sum(1 for v in values if v) / len(values), _ROUND) if values else None


def _gym_block(scores: Sequence[dict]) -> dict:
    """Per-row gym dicts -> mean reward, the manager's five rates, and branch counts."""
    n = len(scores)
    branches = {name: sum(1 for s in scores if s["branch"] == name) for name in BRANCHES}
    return {
        "mean_reward": round(sum(s["reward"] for s in scores) / n, _ROUND) if n else None,
        "safe_rate": _rate([s["safe"] for s in scores]),
        "hallucination_rate": _rate([s["hallucination"] for s in scores]),
        "refusal_rate": _rate([s["refusal"] for s in scores]),
        "consistency_rate": _rate([not s["inconsistency"] for s in scores]),
        "format_error_rate": _rate([s["format_error"] for s in scores]),
        "branches": branches,
    }


def _gold_aware_block(results: Sequence[dict]) -> dict:
    """Per-row results -> the replies that answer where the gold reply abstains or names a conflict (the gym has
    no check for them and scores them as answers, up to +50: :func:`adapters.gym_scorer.missed_decline`), and the
    mean reward with them scored as the rubric's mirror case, -5 (:func:`adapters.gym_scorer.gold_aware_reward`).
    """
    n = len(results)
    rewards = [gold_aware_reward(r["gym"]["reward"], r["gym"]["branch"], r["gold_gym"]["branch"]) for r in results]
    return {
        "answers_where_gold_declines": sum(1 for r in results if missed_decline(r["gym"]["branch"], r["gold_gym"]["branch"])),
        "mean_reward": round(sum(rewards) / n, _ROUND) if n else None,
    }


def gold_ceiling(rows: Sequence[dict], scorer: GymScorer | None = None) -> dict:
    """The gym's verdict on the rows' own gold replies (the ceiling, FIELD_NOTES §2).

    Shapes: rows (N,) -> ``{"n", "overall": block, "by_type": {type: block}}``, a block as in
    :func:`summarise`'s ``gold`` (mean reward, the five rates, branch counts).
    """
    scorer = scorer or GymScorer()
    scored = []
    for index, row in enumerate(rows):
        truth = ground_truth_from_row(row, where=f"row {index}")
        scored.append((row_type(row), scorer.score(truth.gold, truth).as_dict()))
    by_type = {t: [s for kind, s in scored if kind == t] for t in type_order(kind for kind, _ in scored)}
    return {
        "n": len(scored),
        "overall": _gym_block([s for _, s in scored]),
        "by_type": {t: _gym_block(scores) for t, scores in by_type.items()},
    }


def _group(results: Sequence[dict]) -> dict:
    """Per-row results of one group -> that group's metrics (stable key order)."""
    proofs = [r["proof_grounded"] for r in results if r["proof_grounded"] is not None]
    return {
        "n": len(results),
        "strict_format_rate": _rate([r["strict_ok"] for r in results]),
        "strict_failures": {k: sum(1 for r in results if r["strict_primary"] == k) for k in FAILURE_KINDS},
        "strict_failures_any": {k: sum(1 for r in results if k in r["strict_kinds"]) for k in FAILURE_KINDS},
        "tag_presence": {tag: _rate([r["tags_present"][tag] for r in results]) for tag in TAGS},
        "lenient_format_rate": _rate([r["lenient_ok"] for r in results]),
        "proof_present_rate": _rate([r["proof_grounded"] is not None for r in results]),
        "proof_grounding_share": _rate(proofs),
        "gym": _gym_block([r["gym"] for r in results]),
        "gold_aware": _gold_aware_block(results),
    }


def type_order(types: Iterable[str]) -> list[str]:
    """The dataset's four types first (in the dataset's order), then any others sorted."""
    present = set(types)
    return [t for t in DATASET_TYPES if t in present] + sorted(present - set(DATASET_TYPES))


def summarise(results: Sequence[dict]) -> dict:
    """Per-row results -> the ``metrics.json`` dict (overall, by type, and the gold ceiling)."""
    if not results:
        raise DatasetError("nothing to evaluate: no responses matched the test split")
    types = type_order(r["type"] for r in results)
    by_type = {t: [r for r in results if r["type"] == t] for t in types}
    return {
        "n": len(results),
        "overall": _group(results),
        "by_type": {t: _group(rows) for t, rows in by_type.items()},
        "gold": {
            "overall": _gym_block([r["gold_gym"] for r in results]),
            "by_type": {t: _gym_block([r["gold_gym"] for r in rows]) for t, rows in by_type.items()},
        },
    }
