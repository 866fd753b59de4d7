"""``haystack`` rows: one needle sentence among 25-30 literature statements, in 3-6 paragraphs.

The needle is the only sentence naming its trial (an NCT number); the question asks for its figure;
the gold finds it, quotes it, and answers in a sentence. Contexts stay within FIELD_NOTES §7's
maximum length (3,891 characters). Shape: ``Draws -> Draft``.
"""

from __future__ import annotations

from ..synthetic_dipg import DRUGS, ENDPOINTS, HAYSTACK_FACTS, TOXICITIES
from .draws import Draws
from .gold import Draft

MAX_CHARS = 3891


def _needle(d: Draws, nct: str, drug: str) -> tuple[str, str, str, str]:
    """``(needle, question, answer, what it states)`` for one of four needle kinds."""
    r = d.rng
    kind = r.randrange(4)
    if kind == 0:
        endpoint = d.pick(ENDPOINTS)
        value = d.value(endpoint)
        return (f"In trial {nct}, {drug} achieved a {endpoint[0]} of {value}.",
                f"What {endpoint[0]} did {drug} achieve in trial {nct}?",
                f"In trial {nct}, the {endpoint[0]} with {drug} was {value}.",
                f"the {endpoint[0]} with {drug} was {value}")
    if kind == 1:
        n = r.randint(12, 150)
        return (f"Trial {nct} enrolled {n} children with DIPG to receive {drug} after radiotherapy.",
                f"How many children did trial {nct} enrol, and what did they receive?",
                f"Trial {nct} enrolled {n} children with DIPG, who received {drug} after radiotherapy.",
                f"{n} children were enrolled to receive {drug} after radiotherapy")
    if kind == 2:
        dose = d.pick((20, 30, 45, 60, 75, 90, 125, 150, 200, 250, 625))
        schedule = d.pick(("once weekly", "once daily", "twice weekly", "every 21 days"))
        return (f"The recommended phase 2 dose of {drug} in trial {nct} was {dose} mg/m2 {schedule}.",
                f"What was the recommended phase 2 dose of {drug} in trial {nct}?",
                f"The recommended phase 2 dose of {drug} in trial {nct} was {dose} mg/m2 {schedule}.",
                f"the recommended phase 2 dose was {dose} mg/m2 {schedule}")
    tox, pct = d.pick(TOXICITIES), r.randint(3, 40)
    return (f"Dose-limiting {tox} was reported in {pct}% of patients treated with {drug} in trial {nct}.",
            f"In what percentage of patients treated with {drug} in trial {nct} was dose-limiting {tox} reported?",
            f"Dose-limiting {tox} was reported in {pct}% of patients treated with {drug} in trial {nct}.",
            f"dose-limiting {tox} was reported in {pct}% of patients")


def haystack(d: Draws) -> Draft:
    r = d.rng
    nct, drug = d.nct(), d.pick(DRUGS)
    needle, question, answer, states = _needle(d, nct, drug)
    while True:
        n_facts = r.randint(*HAYSTACK_FACTS)
        sentences = d.literature(avoid=nct, k=n_facts - 1)
        sentences.insert(r.randrange(n_facts), needle)
        n_paragraphs = r.randint(3, 6)
        cuts = sorted(r.sample(range(1, n_facts), n_paragraphs - 1))
        paragraphs = [sentences[a:b] for a, b in zip([0] + cuts, cuts + [n_facts])]
        if len("\n\n".join(" ".join(p) for p in paragraphs)) <= MAX_CHARS:
            break
    where = next(i for i, p in enumerate(paragraphs, start=1) if needle in p)
    steps = [f"The question is about trial {nct}.",
             f"Scanning the {n_facts} statements in {n_paragraphs} paragraphs, only one names {nct}, in paragraph {where}.",
             f"It states that {states}.",
             "The other statements concern other trials, cohorts and registries and do not bear on the question."]
    return Draft(paragraphs, question, steps, [needle], answer)
