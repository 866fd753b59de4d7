"""What a recipe is: content signatures that recognise a family, and the rewrites it applies.

A recipe is data, not code paths: the patcher (``adapters/patcher.py``) walks the cells once and asks
each :class:`Rule` whether a cell's *content* matches (never its index or id).

* ``replace``: the first matching cell becomes the rule's template cells; later matches are removed
  (e.g. the Kaggle notebook's second tags cell in its GRPO half).
* ``remove``: matching cells are dropped (a GSM8K-only helper with no DIPG counterpart).
* ``repair``: each :class:`Repair` whose ``detect`` pattern matches a kept code cell rewrites it and
  is named in the report; a repair whose defect is absent does nothing.
* ``insert``: template cells that every output has (parameters, install, DSA core), placed by the
  patcher before the first code cell unless already present.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Signature:
    """A regex over the joined code of a notebook; ``weight`` counts toward the family's score.

    A negative weight is evidence against the family (e.g. ``FastModel`` for plain TRL); a
    ``required`` signature that is absent rules the family out.
    """

    pattern: str
    description: str
    weight: int = 1
    required: bool = False

    def found(self, code: str) -> bool:
        return re.search(self.pattern, code, re.MULTILINE) is not None


@dataclass(frozen=True)
class Repair:
    """A known defect: ``detect`` regex on a cell's source, ``fix(source) -> source`` and why.

    ``needs(source, notebook_code)`` (optional) narrows detection with the whole notebook's code,
    e.g. "GRPOLearner is used here and imported nowhere".
    """

    name: str
    detect: str
    fix: Callable[[str], str]
    reason: str
    needs: Callable[[str, str], bool] | None = None
    fix_sees_notebook: bool = False  # fix(source, notebook_code) instead of fix(source)
    # Optional reason built from what was found, e.g. which names were missing.
    describe: Callable[[str, str], str] | None = None

    def reason_for(self, source: str, notebook_code: str = "") -> str:
        return self.describe(source, notebook_code) if self.describe else self.reason

    def apply(self, source: str, notebook_code: str = "") -> str:
        return self.fix(source, notebook_code) if self.fix_sees_notebook else self.fix(source)

    def applies(self, source: str, notebook_code: str = "") -> bool:
        if re.search(self.detect, source, re.MULTILINE) is None:
            return False
        return self.needs is None or self.needs(source, notebook_code)


@dataclass(frozen=True)
class Rule:
    """Replace or remove the code cells whose source matches any of ``patterns``."""

    name: str
    # "replace" | "remove" | "prefix" / "suffix" (insert template cells before / after the match, keep it)
    action: str
    patterns: tuple[str, ...]
    reason: str
    cells: tuple[str, ...] = ()
    # Patterns a matching cell must NOT contain (keeps a rule off cells another rule owns).
    unless: tuple[str, ...] = ()
    cell_types: tuple[str, ...] = ("code",)
    # Extra test on the whole source (e.g. "every line is a shell line").
    predicate: Callable[[str], bool] | None = None
    # When an earlier cell matched ``after`` (e.g. a ``.train(`` call), ``cells_after`` is used instead
    # of ``cells``; with ``cells`` empty, a match before that point is removed.
    after: str | None = None
    cells_after: tuple[str, ...] = ()

    def cells_for(self, seen_after: bool) -> tuple[str, ...]:
        return self.cells_after if (self.after and seen_after) else self.cells

    def matches(self, source: str, cell_type: str = "code") -> bool:
        if cell_type not in self.cell_types:
            return False
        if any(re.search(p, source, re.MULTILINE) for p in self.unless):
            return False
        if self.predicate is not None and not self.predicate(source):
            return False
        return any(re.search(p, source, re.MULTILINE) for p in self.patterns)


@dataclass(frozen=True)
class Recipe:
    """One base-notebook family.

    ``names`` maps the template cells' identifiers to the base notebook's (e.g. ``tokenizer``);
    ``parameters`` are the defaults of the ``parameters`` cell (CLI ``--model-id`` etc. override);
    ``packages`` maps an importable module to the pip spec the guarded install cell installs;
    ``model_default`` may take MODEL_ID's default from the notebook's code;
    ``environment`` names the prepared environment (venv and Jupyter kernel) its output runs in.
    """

    name: str
    title: str
    signatures: tuple[Signature, ...]
    rules: tuple[Rule, ...]
    repairs: tuple[Repair, ...] = ()
    insert: tuple[str, ...] = ("parameters", "install", "dsa_core")
    names: dict = field(default_factory=dict)
    parameters: dict = field(default_factory=dict)
    packages: dict = field(default_factory=dict)
    min_score: int = 3
    # The family environment its notebooks run in: "core" (.venv), "unsloth" or "tunix" (own venv + kernel).
    environment: str = "core"
    # The notebook's code cells -> a MODEL_ID default that replaces ``parameters``' (e.g. a non-Gemma notebook keeps its own
    # model), or None; ``--model-id`` and an earlier run's parameters cell still win.
    model_default: Callable[[list[str]], str | None] | None = None
    # The DSA notebook's title (the kit header's first line): what the adapted notebook is, not what the base was.
    dsa_title: str = "DSA: Gemma 3 on DIPG safety questions in the dual-stream format"

    def score(self, code: str) -> tuple[int, list[str], list[str]]:
        """(score, descriptions found, descriptions missing); 0 when a required signature is absent."""
        found, missing = [], []
        total = 0
        for signature in self.signatures:
            if signature.found(code):
                found.append(signature.description)
                total += signature.weight
            else:
                missing.append(signature.description)
                if signature.required:
                    total = -10_000
        return max(total, 0), found, missing
