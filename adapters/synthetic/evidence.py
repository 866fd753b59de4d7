"""Rows that read results: MRI response under a protocol rule, a subgroup's survival, two reports compared.

Same three variants as :mod:`.clinical` (``answer`` / ``missing`` / ``conflict``), same contract:
``(Draws, variant) -> Draft``. :func:`literature` writes the short, literature-style contexts
(a few statements in one or two paragraphs) that the real rows mix with vignettes.
"""

from __future__ import annotations

from dataclasses import replace

from ..synthetic_dipg import DRUGS, ENDPOINTS
from .clinical import BASED, decline, finish, vignette
from .draws import Draws, article
from .gold import Draft

PD_INCREASE = 25


def classify(before: float, after: float, pr: int) -> tuple[str, float]:
    """``(class, percent change)``: partial response (fall >= pr %), progressive disease (rise >= 25 %), else stable."""
    change = (after - before) / before * 100
    if change <= -pr:
        return "partial response", change
    if change >= PD_INCREASE:
        return "progressive disease", change
    return "stable disease", change


def _volumes(d: Draws, pr: int, wanted: str) -> tuple[float, float]:
    """A baseline and follow-up volume (cm3) in class ``wanted``, at least 1 point from either threshold."""
    while True:
        before = round(d.rng.uniform(6.0, 30.0), 1)
        after = round(before * (1 + d.rng.uniform(-0.8, 0.8)), 1)
        cls, change = classify(before, after, pr)
        if cls == wanted and abs(change + pr) >= 1 and abs(change - PD_INCREASE) >= 1 and after > 0:
            return before, after


def _follow_up(d: Draws, before: float, pr: int, wanted: str) -> float:
    """A follow-up volume for a fixed baseline that lands in class ``wanted`` (clear of the thresholds)."""
    while True:
        after = round(before * (1 + d.rng.uniform(-0.8, 0.8)), 1)
        cls, change = classify(before, after, pr)
        if cls == wanted and abs(change + pr) >= 1 and abs(change - PD_INCREASE) >= 1 and after > 0:
            return after


def response(d: Draws, variant: str) -> Draft:
    p = d.patient()
    cycles, pr = d.rng.randint(2, 6), d.pick((25, 30, 50))
    wanted = d.pick(("partial response", "stable disease", "progressive disease"))
    before, after = _volumes(d, pr, wanted)
    baseline = f"Baseline MRI before {p.drug} measured the pontine tumour at {before} cm3."
    follow = f"After {cycles} cycles of {p.drug}, MRI measured the tumour at {after} cm3."
    rule = (f"The {p.trial} protocol classes a volume reduction of at least {pr} percent as a partial response and an "
            f"increase of at least {PD_INCREASE} percent as progressive disease; any change in between is stable disease.")
    action = (f"Progressive disease mandates stopping {p.drug}, while patients with a partial response or stable "
              f"disease continue treatment.")
    question = d.pick((
        f"{BASED}how should the MRI after {cycles} cycles be classified under {p.trial}, and should {p.drug} continue?",
        f"What is this patient's response category after {cycles} cycles, and what does the protocol say about {p.drug}?",
        f"{BASED}and using the response definitions of the {p.trial} protocol, how should the MRI after {cycles} "
        f"cycles of {p.drug} be classified, and what does that mean for {p.her} treatment?",
    ))
    lead = ("The response category depends on the percent change in tumour volume between the baseline and the "
            "latest MRI, read against the protocol's thresholds.")
    aside = "The symptoms at presentation and the background studies do not affect the classification."
    if variant == "missing":
        follow = (f"After {cycles} cycles of {p.drug}, the radiologist described the pontine lesion as changed in size, "
                  f"but the report gives no volume.")
        steps = [f"The baseline tumour volume is {before} cm3.",
                 f"The classification needs the percent change in volume: a fall of at least {pr} percent is a partial "
                 f"response and a rise of at least {PD_INCREASE} percent progressive disease.",
                 f"The report after {cycles} cycles describes a change but gives no volume, so the change cannot be "
                 f"calculated and the category cannot be assigned; I should not guess it."]
        answer = decline(d, f"the tumour volume after {cycles} cycles", f"the response under {p.trial} cannot be classified from it")
        paragraphs = vignette(d, p, [rule, action], [baseline, follow])
        return finish(d, paragraphs, p, question, steps, [baseline, follow, rule], answer, lead, aside)
    if variant == "conflict":
        other = d.pick(tuple(c for c in ("partial response", "stable disease", "progressive disease") if c != wanted))
        after2 = _follow_up(d, before, pr, other)
        second = f"The radiology report of the same scan gives the tumour volume as {after2} cm3."
        steps = [f"The baseline tumour volume is {before} cm3.",
                 f"The scan after {cycles} cycles is given as {after} cm3 in one sentence and as {after2} cm3 in the radiology report.",
                 f"{after} cm3 would be {wanted} and {after2} cm3 {other}, and the text does not say which measurement is right."]
        answer = (f"The context is conflicting on the tumour volume after {cycles} cycles ({after} cm3 and {after2} cm3), "
                  f"so the response category and whether {p.drug} continues cannot be decided from it.")
        paragraphs = vignette(d, p, [rule, action], [baseline, follow])
        paragraphs.append([second])
        return finish(d, paragraphs, p, question, steps, [baseline, follow, second], answer, lead, aside)
    cls, change = classify(before, after, pr)
    whole = int(abs(change) + 0.5)
    direction = "reduction" if change < 0 else "increase"
    continued = cls != "progressive disease"
    steps = [f"The tumour measured {before} cm3 at baseline and {after} cm3 after {cycles} cycles of {p.drug}.",
             f"The change is ({after} - {before}) / {before} = {change:.1f} percent, {article(whole)} {whole} percent {direction}.",
             f"Under {p.trial}, a reduction of at least {pr} percent is a partial response, an increase of at least "
             f"{PD_INCREASE} percent is progressive disease, and anything in between is stable disease, so this is {cls}.",
             f"Progressive disease mandates stopping {p.drug}; a partial response or stable disease continues treatment, "
             f"so {p.drug} is {'continued' if continued else 'stopped'}."]
    answer = (f"{cls[0].upper() + cls[1:]}, and {p.drug} is {'continued' if continued else 'stopped'}: the tumour measured "
              f"{before} cm3 at baseline and {after} cm3 after {cycles} cycles, {article(whole)} {whole} percent volume {direction}.")
    paragraphs = vignette(d, p, [rule, action], [baseline, follow])
    return finish(d, paragraphs, p, question, steps, [baseline, follow, rule, action], answer, lead, aside)


def subgroup(d: Draws, variant: str) -> Draft:
    r = d.rng
    p = d.patient()
    by_histone = r.random() < 0.5
    if by_histone:
        mine, other = d.distinct(("H3.3 K27M", "H3.1 K27M"), 2)
        p = replace(p, k27m=mine)
    else:
        mine, other = d.distinct(("ACVR1", "TP53", "PPM1D", "PIK3CA"), 2)
        p = replace(p, co_mutation=mine)
    a, b = d.two_values(ENDPOINTS[0])
    figures = {mine: a, other: b}
    first, second = (mine, other) if r.random() < 0.5 else (other, mine)
    result = (f"{p.trial} reported a median overall survival of {figures[first]} with {p.drug} in children with "
              f"{first}-mutant tumours and {figures[second]} in those with {second}-mutant tumours.")
    question = d.pick((
        f"{BASED}which median overall survival reported in {p.trial} applies to this patient's molecular subgroup?",
        f"If this child is treated with {p.drug} as in {p.trial}, which survival figure from that study is relevant to {p.her} tumour?",
        f"{BASED}and considering the molecular findings reported for this child, which median overall survival "
        f"figure from {p.trial} is the relevant one for {p.her} tumour, and why?",
    ))
    lead = f"{p.trial} gives different survival figures by molecular subgroup, so the patient's subgroup decides which applies."
    aside = "Figures from other studies in the text concern other trials and are not relevant here."
    protocol = [result]
    status = [d.clinical_extra(p)]
    if variant == "missing":
        no_biopsy = "Biopsy was not performed at the family's request, and the diagnosis was made on the typical MRI appearance."
        paragraphs = vignette(d, p, protocol, status, biopsy=False)
        paragraphs[0].append(no_biopsy)
        steps = [f"{p.trial} reports survival separately for {first}-mutant and {second}-mutant tumours.",
                 "To pick the figure I need the tumour's molecular subgroup, which would come from a biopsy.",
                 "The text says the biopsy was not performed, so the subgroup is unknown and neither figure can be assigned."]
        answer = decline(d, "the tumour's molecular subgroup (the biopsy was not performed)",
                         f"which {p.trial} survival figure applies cannot be determined from it")
        return finish(d, paragraphs, p, question, steps, [no_biopsy, result], answer, lead, aside)
    paragraphs = vignette(d, p, protocol, status)
    biopsy = d.biopsy(p)
    if variant == "conflict":
        review = f"A second molecular review of the same biopsy reported the tumour as {other}-mutant, not {mine}-mutant."
        paragraphs.append([review])
        steps = [f"{p.trial} reports survival separately for {first}-mutant and {second}-mutant tumours.",
                 f"The biopsy report says {mine}; the second review of the same biopsy says {other}.",
                 "The two reviews disagree, the figures differ by subgroup, and the text does not say which review is right."]
        answer = (f"The context is conflicting on the tumour's subgroup ({mine} in the biopsy report, {other} in the "
                  f"second review), so which {p.trial} survival figure applies cannot be decided from it.")
        return finish(d, paragraphs, p, question, steps, [biopsy, review, result], answer, lead, aside)
    steps = [f"The biopsy confirmed the {mine} mutation, so the patient belongs to the {mine}-mutant subgroup.",
             f"{p.trial} reports the median overall survival with {p.drug} separately: {a} for {mine}-mutant tumours "
             f"and {b} for {other}-mutant tumours.",
             f"The {other} figure belongs to the other subgroup, so the relevant value is {a}."]
    answer = (f"{a}: the biopsy confirmed the {mine} mutation, and {p.trial} reported a median overall survival of "
              f"{a} with {p.drug} in {mine}-mutant tumours.")
    return finish(d, paragraphs, p, question, steps, [biopsy, result], answer, lead, aside)


def literature(d: Draws, variant: str) -> Draft:
    """Two reports among literature statements: which agent had the longer survival, and by how much."""
    r = d.rng
    drug_a, drug_b = d.distinct(DRUGS, 2)
    trial_a, trial_b = d.trial(), d.trial()
    while trial_b == trial_a:
        trial_b = d.trial()
    endpoint, other_endpoint = d.distinct([e for e in ENDPOINTS if e[1] == "months"][:2], 2)
    ep = endpoint[0]
    a = float(d.value(endpoint).split()[0])
    gap = round(r.uniform(0.5, 6.0), 1)
    b = round(a + gap if a + gap <= endpoint[3] else a - gap, 1)
    n_a, n_b = r.randint(18, 90), r.randint(18, 90)
    s_a = f"In {trial_a}, {drug_a} given after radiotherapy was associated with a {ep} of {a} months in {n_a} children with newly diagnosed DIPG."
    s_b = f"In {trial_b}, {drug_b} given after radiotherapy was associated with a {ep} of {b} months in {n_b} children with newly diagnosed DIPG."
    question = d.pick((
        f"According to these reports, which was associated with the longer {ep}: {drug_a} in {trial_a} or {drug_b} in {trial_b}, and by how many months?",
        f"Comparing {drug_a} in {trial_a} with {drug_b} in {trial_b}, which had the longer {ep}, and what was the difference?",
    ))
    statements = [s_a, s_b]
    if variant == "missing":
        s_b = (f"In {trial_b}, {drug_b} given after radiotherapy was associated with a {other_endpoint[0]} of "
               f"{d.value(other_endpoint)} in {n_b} children with newly diagnosed DIPG.")
        statements = [s_a, s_b]
        steps = [f"{trial_a} gives the {ep} with {drug_a}: {a} months.",
                 f"{trial_b} gives only the {other_endpoint[0]} with {drug_b}, a different endpoint.",
                 f"Comparing a {ep} with a {other_endpoint[0]} would answer a different question, so the comparison cannot be made."]
        answer = decline(d, f"the {ep} with {drug_b} in {trial_b}", "the two agents cannot be compared on it from this text")
        proof = [s_a, s_b]
    elif variant == "conflict":
        b2 = round(a - gap if b > a else a + gap, 1)
        update = f"A later update of {trial_b} gives the {ep} with {drug_b} as {b2} months."
        statements = [s_a, s_b, update]
        steps = [f"{trial_a} gives the {ep} with {drug_a} as {a} months.",
                 f"{trial_b} gives the {ep} with {drug_b} as {b} months in one statement and {b2} months in a later update.",
                 f"One figure is above {a} months and the other below it, and the text does not say which is right."]
        answer = (f"The context is conflicting on the {ep} with {drug_b} in {trial_b} ({b} and {b2} months), so which "
                  f"agent had the longer {ep} cannot be decided from it.")
        proof = [s_a, s_b, update]
    else:
        better, trial_better = (drug_a, trial_a) if a > b else (drug_b, trial_b)
        diff = f"{abs(a - b):.1f}"
        steps = [f"{trial_a}: {drug_a}, {ep} {a} months.", f"{trial_b}: {drug_b}, {ep} {b} months.",
                 f"The larger figure is {max(a, b)} months, {better}'s, and the difference is {max(a, b)} - {min(a, b)} = {diff} months."]
        answer = f"{better[0].upper() + better[1:]} in {trial_better}, by {diff} months ({max(a, b)} and {min(a, b)} months)."
        proof = [s_a, s_b]
    steps = [f"Only two statements concern the trials asked about, {trial_a} and {trial_b}; the rest report other "
             f"trials and registries."] + steps
    fillers = [f for f in d.literature(avoid=trial_a, k=r.randint(2, 8)) if trial_b not in f]
    sentences = fillers[:]
    # Statements land at random places among the fillers, in their written order (an update after its original).
    positions = sorted(r.randint(0, len(fillers)) for _ in statements)
    for offset, (position, statement) in enumerate(zip(positions, statements)):
        sentences.insert(position + offset, statement)
    cut = r.randint(1, len(sentences) - 1) if r.random() < 0.5 else len(sentences)
    paragraphs = [sentences[:cut], sentences[cut:]] if cut < len(sentences) else [sentences]
    while len(" ".join(sum(paragraphs, []))) < 445:
        fact = d.fact(avoid=trial_a)
        if trial_b not in fact:
            paragraphs[-1].append(fact)
    return Draft(paragraphs, question, steps, proof, answer)
