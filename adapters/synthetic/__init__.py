"""The second offline DIPG generator (v2): rows shaped like the real upstream rows (FIELD_NOTES §7).

Today's generator (:mod:`adapters.synthetic_dipg`, v1) writes short one-paragraph vignettes with
short answers; the real rows are multi-paragraph clinical vignettes (presentation, MRI, biopsy,
radiotherapy, a trial protocol with doses in mg/m2, toxicity grades, platelet counts and decision
rules) whose question needs two or three facts combined, literature-style statements, off-topic and
missing-fact questions, and golds whose ``<think>`` often reasons in numbered steps and whose
``<proof>`` quotes whole sentences. This package writes such rows, seeded and marked synthetic.

Modules, one job each:

* :mod:`.draws`: the seeded random draws and the clinical sentences/paragraphs they fill in.
* :mod:`.gold`: a :class:`~.gold.Draft` (paragraphs, question, think steps, proof sentences,
  answer) and how it is rendered (numbered or prose think, ``- "…"`` proof lines).
* :mod:`.scenarios`: clinical scenarios (toxicity rule, dose, eligibility, response, subgroup),
  each written as an answerable row, a missing-fact row or a really conflicting row.
* :mod:`.offtopic`: DIPG contexts with an off-topic question (``anti_knowledge``).
* :mod:`.haystack`: one needle among 25-30 literature statements in paragraphs.
* :mod:`.rows`: the type mix and :func:`~.rows.generate_rows`.
"""

from .rows import DEFAULT_MIX, SOURCE, generate_rows, parse_mix, type_counts

__all__ = ["DEFAULT_MIX", "SOURCE", "generate_rows", "parse_mix", "type_counts"]
