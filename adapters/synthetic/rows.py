"""The v2 rows: type mix, builder rotation, rendering, ids; byte-identical for a given seed.

* ``reasoning``: answerable vignettes and literature comparisons (:mod:`.clinical`, :mod:`.evidence`).
* ``refusal``: the same scenarios with the deciding fact missing or really contradicted, in turn.
* ``haystack``: :mod:`.haystack`. ``anti_knowledge``: :mod:`.offtopic`.

The mix is configurable (:func:`parse_mix`); counts use the largest-remainder rule so they sum to
``n_rows``. A share ``numbered`` of golds (default 0.4, FIELD_NOTES §7) write ``<think>`` as
numbered steps, the rest as prose. Shapes: :func:`generate_rows` ``(n_rows, seed, mix, numbered)
-> list[row]``, a row as in :mod:`adapters.synthetic_dipg`.
"""

from __future__ import annotations

import random
import uuid
from typing import Callable

from ..dataset import ROW_TYPES
from ..errors import DSAError
from ..synthetic_dipg import TIMESTAMP
from . import clinical, evidence
from .draws import Draws
from .gold import Draft, render_draft
from .haystack import haystack
from .offtopic import off_topic

SOURCE = ("synthetic-offline-dipg-v2 (adapters/synthetic; multi-paragraph stand-in for "
          "surfiniaburger/dipg-safety-instruction-1500)")
DEFAULT_MIX = {"reasoning": 0.4, "refusal": 0.2, "haystack": 0.2, "anti_knowledge": 0.2}
NUMBERED_SHARE = 0.4
SCENARIOS: tuple[Callable[[Draws, str], Draft], ...] = (
    clinical.toxicity, clinical.dose, clinical.eligibility, evidence.response, evidence.subgroup, evidence.literature,
)
# Refusals walk scenario x (missing, conflict): every scenario declines both ways, in turn.
REFUSALS = tuple((scenario, variant) for variant in ("missing", "conflict") for scenario in SCENARIOS)


def parse_mix(text: str) -> dict[str, float]:
    """``"reasoning=0.4,refusal=0.2,..."`` -> shares summing to 1 (types left out get 0).

    Raises :class:`DSAError` (one line) for an unknown type, a negative or non-numeric share, or all zeros.
    """
    shares = {name: 0.0 for name in ROW_TYPES}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in shares:
            raise DSAError(f"--mix: {part!r} is not TYPE=SHARE with TYPE one of {', '.join(ROW_TYPES)}")
        try:
            share = float(value)
        except ValueError:
            raise DSAError(f"--mix: share {value.strip()!r} for {name} is not a number") from None
        if share < 0 or share != share or share == float("inf"):
            raise DSAError(f"--mix: share for {name} must be a finite number >= 0, got {value.strip()}")
        shares[name] = share
    total = sum(shares.values())
    if total <= 0:
        raise DSAError("--mix: at least one share must be above 0")
    return {name: share / total for name, share in shares.items()}


def type_counts(n_rows: int, mix: dict[str, float] | None = None) -> dict[str, int]:
    """Rows per type: ``n_rows * share`` floored, the remainder to the largest fractions (ties in ROW_TYPES order)."""
    mix = DEFAULT_MIX if mix is None else mix
    total = sum(mix.values())
    exact = {name: n_rows * mix.get(name, 0.0) / total for name in ROW_TYPES}
    counts = {name: int(value) for name, value in exact.items()}
    left = n_rows - sum(counts.values())
    for name in sorted(ROW_TYPES, key=lambda k: (-(exact[k] - counts[k]), ROW_TYPES.index(k)))[:left]:
        counts[name] += 1
    return counts


def draft_for(d: Draws, row_type: str, index: int) -> Draft:
    """The ``index``-th draft of ``row_type`` (builders rotate so each gets an even share)."""
    if row_type == "reasoning":
        return SCENARIOS[index % len(SCENARIOS)](d, "answer")
    if row_type == "refusal":
        scenario, variant = REFUSALS[index % len(REFUSALS)]
        return scenario(d, variant)
    if row_type == "haystack":
        return haystack(d)
    return off_topic(d)


def generate_rows(n_rows: int, seed: int = 42, mix: dict[str, float] | None = None,
                  numbered: float = NUMBERED_SHARE) -> list[dict]:
    """``n_rows`` v2 rows for ``seed``: ``list[{"messages": [user, assistant], "metadata": {...}}]``.

    Types are assigned by :func:`type_counts` and shuffled; contexts are unique (a repeat is drawn again).
    """
    if n_rows < 1:
        raise ValueError("n_rows must be at least 1")
    if not 0.0 <= numbered <= 1.0:
        raise ValueError("numbered must be within [0, 1]")
    rng = random.Random(seed)
    id_rng = random.Random(seed + 0x5EED2)
    d = Draws(rng)
    types = [name for name, count in type_counts(n_rows, mix).items() for _ in range(count)]
    rng.shuffle(types)
    seen: set[str] = set()
    per_type: dict[str, int] = {}
    rows = []
    for row_type in types:
        index = per_type.get(row_type, 0)
        per_type[row_type] = index + 1
        while True:
            draft = draft_for(d, row_type, index)
            user, assistant, context = render_draft(draft, numbered=rng.random() < numbered)
            if context not in seen:
                seen.add(context)
                break
        rows.append({
            "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}],
            "metadata": {"id": str(uuid.UUID(int=id_rng.getrandbits(128), version=4)), "type": row_type,
                         "source": SOURCE, "timestamp": TIMESTAMP},
        })
    return rows
