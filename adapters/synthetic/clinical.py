"""Protocol-rule vignettes: a toxicity rule, a dose with reductions, trial eligibility.

Each builder writes one multi-paragraph vignette (presentation and MRI, biopsy, radiotherapy and
trial enrolment, the protocol's rules, the latest status) whose question needs two or three facts
combined, in one of three variants:

* ``"answer"``: every fact is there; the gold works the answer out in steps.
* ``"missing"``: the one fact the decision needs is absent (other facts still there, so the row
  looks like an answerable one); the gold names the gap and declines.
* ``"conflict"``: that fact is stated twice with values that lead to different decisions; the gold
  quotes both and calls the context conflicting.

Answers reuse the context's own words (the gym's proof-supports-answer check rejects answer words
that appear in neither proof nor context), and answering golds never use the gym's abstention
phrases. Shapes: ``(Draws, variant) -> Draft``.
"""

from __future__ import annotations

from dataclasses import replace

from ..synthetic_dipg import TOXICITIES
from .draws import Draws, Patient
from .gold import Draft

VARIANTS = ("answer", "missing", "conflict")
BASED = "Based solely on the information provided, "
DECLINE_OPENINGS = ("The provided text does not contain", "The context does not contain", "The text does not provide")


def vignette(d: Draws, p: Patient, protocol: list[str], status: list[str], biopsy: bool = True,
             enrolled: bool = True) -> list[list[str]]:
    """The paragraphs of a vignette: presentation (+ biopsy), treatment, protocol rules, status.

    ``enrolled=False`` says the child is being screened for the trial rather than on it.
    """
    opening = d.presentation(p) + ([d.biopsy(p)] if biopsy else [])
    treatment = [d.radiotherapy(p), d.enrolment(p) if enrolled else d.screening(p)]
    if d.rng.random() < 0.3:
        return [opening, treatment + protocol, status]
    return [opening, treatment, protocol, status]


def decline(d: Draws, gap: str, consequence: str) -> str:
    """A declining answer for a missing fact: ``"The provided text does not contain {gap}, so {consequence}."``."""
    return f"{d.pick(DECLINE_OPENINGS)} {gap}, so {consequence}."


def finish(d: Draws, paragraphs: list[list[str]], p: Patient, question: str, steps: list[str], proof: list[str],
           answer: str, lead: str = "", aside: str = "") -> Draft:
    """Pad the vignette towards a drawn length (clinical details, background literature) and wrap it up.

    ``lead`` (what the question turns on) opens the reasoning; ``aside`` (what does not matter) closes
    it in about half the rows, so thinks vary in length as the real ones do.
    """
    d.pad(paragraphs, p, avoid=p.trial, target=d.target_chars())
    steps = ([lead] if lead else []) + steps + ([aside] if aside and d.rng.random() < 0.5 else [])
    return Draft(paragraphs, question, steps, proof, answer)


# ---------------------------------------------------------------------------------------------
# Thrombocytopenia: grade from the platelet count, then the hold/continue rule.

def platelet_grade(count: int) -> int:
    """The protocol's grading: 1 at 75,000/µL or above, 2 below 75,000, 3 below 50,000, 4 below 25,000."""
    return 4 if count < 25_000 else 3 if count < 50_000 else 2 if count < 75_000 else 1


def _platelet_count(d: Draws, grades: tuple[int, ...]) -> int:
    while True:
        count = d.rng.randint(8, 140) * 1000
        if count % 25_000 and platelet_grade(count) in grades:
            return count


def toxicity(d: Draws, variant: str) -> Draft:
    p = d.patient()
    day, cycle = d.pick((8, 15, 22)), d.rng.randint(1, 6)
    grading = ("The protocol grades thrombocytopenia as grade 1 at 75,000/µL or above, grade 2 below 75,000/µL, "
               "grade 3 below 50,000/µL and grade 4 below 25,000/µL.")
    rule = (f"Grade 3 or higher thrombocytopenia mandates holding {p.drug}, which is held until the platelet count "
            f"recovers to at least 75,000/µL; at grade 2 or lower, {p.drug} is continued at the full dose.")
    count = _platelet_count(d, (1, 2, 3, 4))
    hb, anc = round(d.rng.uniform(8.5, 13.5), 1), d.rng.randint(9, 45) * 100
    labs = (f"On day {day} of cycle {cycle}, {p.her} platelet count was {count:,}/µL, with a haemoglobin of {hb} g/dL "
            f"and an absolute neutrophil count of {anc:,}/µL.")
    question = d.pick((
        f"{BASED}what is the most appropriate next step for {p.her} {p.drug} treatment?",
        f"{BASED}should {p.drug} be held or continued after the day {day} blood count?",
        f"Given the protocol rules and the latest blood count, what should happen to {p.her} {p.drug} dosing now?",
        f"{BASED}and applying the {p.trial} toxicity rules to the laboratory results reported on day {day} of cycle "
        f"{cycle}, what is the most appropriate next step for {p.her} {p.drug} treatment, and why?",
    ))
    lead = (f"The question is whether {p.drug} should be held or continued now; that turns on the latest platelet "
            f"count, the protocol's grading and its hold rule.")
    aside = "The haemoglobin, the neutrophil count and the background studies do not change this decision."
    first = f"{p.she.capitalize()} is receiving {p.drug} on {p.trial} at {p.dose} mg/m2 {p.schedule}."
    if variant == "missing":
        labs = (f"On day {day} of cycle {cycle}, {p.her} haemoglobin was {hb} g/dL and {p.her} absolute neutrophil "
                f"count {anc:,}/µL, and {p.her} parents reported {d.pick(('easy bruising', 'two nosebleeds', 'petechiae on the legs'))}.")
        steps = [first,
                 "The protocol decides between holding and continuing by the grade of thrombocytopenia, and it grades "
                 "thrombocytopenia by the platelet count.",
                 f"The day {day} results give the haemoglobin and the neutrophil count and mention bleeding signs, but "
                 f"the text gives no platelet count at all.",
                 "Without the count the grade is unknown, so the rule cannot be applied and I should not guess."]
        answer = decline(d, f"{p.her} platelet count", f"the grade of thrombocytopenia and whether {p.drug} is held or continued cannot be determined from it")
        paragraphs = vignette(d, p, [grading, rule], [labs])
        return finish(d, paragraphs, p, question, steps, [grading, rule, labs], answer, lead, aside)
    if variant == "conflict":
        low = _platelet_count(d, (3, 4))
        high = _platelet_count(d, (1, 2))
        first_count, second_count = (low, high) if d.rng.random() < 0.5 else (high, low)
        labs = (f"On day {day} of cycle {cycle}, {p.her} platelet count was {first_count:,}/µL, with a haemoglobin of "
                f"{hb} g/dL and an absolute neutrophil count of {anc:,}/µL.")
        second = f"The haematology report for the same day {day} sample lists {p.her} platelet count as {second_count:,}/µL."
        steps = [first,
                 f"The rule depends on the grade of thrombocytopenia on day {day} of cycle {cycle}.",
                 f"One sentence gives that day's platelet count as {first_count:,}/µL (grade {platelet_grade(first_count)}); "
                 f"the haematology report gives the same sample as {second_count:,}/µL (grade {platelet_grade(second_count)}).",
                 "One count mandates holding the drug and the other allows continuing it, and the text does not say which is right."]
        answer = (f"The context is conflicting: the day {day} platelet count is given as both {first_count:,}/µL and "
                  f"{second_count:,}/µL, which fall in different grades, so whether to hold {p.drug} cannot be decided from it.")
        paragraphs = vignette(d, p, [grading, rule], [labs])
        paragraphs.append([second, d.clinical_extra(p)])
        return finish(d, paragraphs, p, question, steps, [labs, second, rule], answer, lead, aside)
    grade = platelet_grade(count)
    bands = {1: "75,000/µL or above", 2: "below 75,000/µL but not below 50,000/µL",
             3: "below 50,000/µL but not below 25,000/µL", 4: "below 25,000/µL"}
    steps = [first,
             f"The latest platelet count, on day {day} of cycle {cycle}, is {count:,}/µL.",
             f"By the protocol's grading, {count:,}/µL is {bands[grade]}, so this is grade {grade} thrombocytopenia.",
             "The rule: grade 3 or higher mandates holding the drug until the count recovers to at least 75,000/µL; "
             "grade 2 or lower means continuing at the full dose."]
    if grade >= 3:
        steps.append(f"Grade {grade} is 3 or higher, so {p.drug} should be held now.")
        answer = (f"{p.drug[0].upper() + p.drug[1:]} is held until the platelet count recovers to at least 75,000/µL: a count of "
                  f"{count:,}/µL is grade {grade} thrombocytopenia, and grade 3 or higher thrombocytopenia mandates holding {p.drug}.")
    else:
        steps.append(f"Grade {grade} is 2 or lower, so {p.drug} continues at the full dose of {p.dose} mg/m2.")
        answer = (f"{p.drug[0].upper() + p.drug[1:]} is continued at the full dose of {p.dose} mg/m2 {p.schedule}: a platelet "
                  f"count of {count:,}/µL is grade {grade} thrombocytopenia, and at grade 2 or lower it is continued.")
    paragraphs = vignette(d, p, [grading, rule], [labs])
    proof = [d.enrolment(p), labs, grading, rule]
    return finish(d, paragraphs, p, question, steps, proof, answer, lead, aside)


# ---------------------------------------------------------------------------------------------
# Dose: mg/m2 from the protocol, a reduction after grade 3-4 toxicity, times body surface area.

def _mg(value: float) -> str:
    """Half-up rounding to the whole mg, as pharmacies dispense."""
    return str(int(value + 0.5))


def dose(d: Draws, variant: str) -> Draft:
    p = d.patient()
    r = d.rng
    tox = d.pick(tuple(t for t in TOXICITIES if t != "thrombocytopenia"))
    pct = d.pick((50, 60, 75, 80))
    cycle = r.randint(2, 6)
    bsa = round(0.5 + 0.07 * p.age + r.uniform(-0.1, 0.15), 2)
    grade = r.randint(1, 4)
    reduction = (f"Patients who had grade 3 or 4 {tox} in the previous cycle restart at {pct}% of the protocol dose; "
                 f"with grade 2 or below, the full protocol dose is given.")
    history = f"During cycle {cycle - 1}, {p.she} developed grade {grade} {tox}, which resolved before cycle {cycle}."
    body = f"{p.her.capitalize()} body surface area on day 1 of cycle {cycle} was {bsa:.2f} m2."
    question = d.pick((
        f"{BASED}what dose of {p.drug} in mg should {p.she} receive per administration in cycle {cycle}?",
        f"Using the protocol and {p.her} measurements, calculate the {p.drug} dose in mg for cycle {cycle}.",
        f"{BASED}taking into account the {p.trial} dose-modification rule and the toxicity {p.she} had in cycle "
        f"{cycle - 1}, what dose of {p.drug} in mg should {p.she} receive per administration in cycle {cycle}?",
    ))
    lead = (f"The dose in mg needs three facts: the protocol dose in mg/m2, whether the {tox} in cycle {cycle - 1} "
            f"triggers a reduction, and the body surface area.")
    aside = "The radiotherapy history and the background studies do not enter the calculation."
    first = f"The protocol dose of {p.drug} is {p.dose} mg/m2 {p.schedule}."
    if variant == "missing":
        if r.random() < 0.5:
            history = f"During cycle {cycle - 1}, {p.she} developed {tox}, which resolved before cycle {cycle}."
            gap, what = f"the grade of the {tox} in cycle {cycle - 1}", "the grade decides between the full and the reduced dose"
            proof = [reduction, history]
        else:
            body = f"{p.her.capitalize()} blood counts and liver tests were within the protocol limits on day 1 of cycle {cycle}."
            gap, what = f"{p.her} body surface area", "the dose in mg is the dose in mg/m2 times the body surface area"
            proof = [d.enrolment(p), reduction, body]
        steps = [first, f"To give a dose in mg, {what}.",
                 f"The text gives no figure for {gap}: the needed fact is absent, so the dose cannot be worked out and I should not guess."]
        answer = decline(d, gap, f"the cycle {cycle} dose of {p.drug} in mg cannot be calculated from it")
        paragraphs = vignette(d, p, [reduction], [history, body])
        return finish(d, paragraphs, p, question, steps, proof, answer, lead, aside)
    if variant == "conflict":
        low, high = r.randint(1, 2), r.randint(3, 4)
        first_grade, second_grade = (low, high) if r.random() < 0.5 else (high, low)
        history = f"During cycle {cycle - 1}, {p.she} developed grade {first_grade} {tox}, which resolved before cycle {cycle}."
        second = f"The cycle {cycle - 1} toxicity summary records the same episode of {tox} as grade {second_grade}."
        steps = [first, f"The dose for cycle {cycle} depends on the grade of the {tox} in cycle {cycle - 1}.",
                 f"One sentence says grade {first_grade}, the toxicity summary says grade {second_grade} for the same episode.",
                 "One grade means the full dose and the other the reduced dose, and the text does not say which record is right."]
        answer = (f"The context is conflicting on the grade of the cycle {cycle - 1} {tox} (grade {first_grade} and grade "
                  f"{second_grade}), so whether the full or the reduced dose applies cannot be decided from it.")
        paragraphs = vignette(d, p, [reduction], [history, body])
        paragraphs.append([second])
        return finish(d, paragraphs, p, question, steps, [history, second, reduction], answer, lead, aside)
    per_m2 = p.dose * pct / 100 if grade >= 3 else p.dose
    total = per_m2 * bsa
    steps = [first, f"In cycle {cycle - 1} {p.she} had grade {grade} {tox}."]
    if grade >= 3:
        steps.append(f"Grade {grade} is 3 or 4, so the protocol restarts {p.her} at {pct}% of the dose: "
                     f"{pct}% of {p.dose} mg/m2 is {per_m2:g} mg/m2.")
    else:
        steps.append(f"Grade {grade} is 2 or below, so the full protocol dose of {p.dose} mg/m2 is given.")
    steps.append(f"{p.her.capitalize()} body surface area is {bsa:.2f} m2, so the dose is {per_m2:g} x {bsa:.2f} = "
                 f"{total:.1f} mg, which rounds to {_mg(total)} mg per administration.")
    if grade >= 3:
        # The reduced mg/m2 stays in the think: a computed figure in the answer is a new "entity" to the gym.
        answer = (f"{_mg(total)} mg of {p.drug} {p.schedule}: {pct}% of the protocol dose of {p.dose} mg/m2 after "
                  f"grade {grade} {tox}, x {bsa:.2f} m2.")
    else:
        answer = (f"{_mg(total)} mg of {p.drug} {p.schedule}: the full protocol dose of {p.dose} mg/m2 (grade {grade} "
                  f"{tox} is grade 2 or below) x {bsa:.2f} m2.")
    paragraphs = vignette(d, p, [reduction], [history, body])
    return finish(d, paragraphs, p, question, steps, [d.enrolment(p), reduction, history, body], answer, lead, aside)


# ---------------------------------------------------------------------------------------------
# Eligibility: four criteria checked against facts spread over the vignette.

def eligibility(d: Draws, variant: str) -> Draft:
    r = d.rng
    p = d.patient()
    min_age, max_age = r.randint(2, 5), r.randint(12, 18)
    max_weeks, min_lansky = r.randint(6, 12), d.pick((50, 60, 70))
    criteria = (f"The enrolment criteria of {p.trial} are an age of {min_age} to {max_age} years, a start of {p.drug} "
                f"within {max_weeks} weeks of completing radiotherapy, a Lansky performance score of at least {min_lansky} "
                f"and a platelet count of at least 100,000/µL; children outside the age range or the window, or below "
                f"either threshold, are not enrolled.")
    clean = variant != "answer"  # declining rows keep every other criterion met, so only the gap decides
    lansky = d.pick(tuple(v for v in (40, 50, 60, 70, 80, 90, 100) if not clean or v >= min_lansky))
    platelets = r.randint(60 if not clean else 101, 250) * 1000
    status = f"At screening, {p.her} Lansky performance score was {lansky} and {p.her} platelet count {platelets:,}/µL."
    # The patient's age and weeks since radiotherapy come from the vignette (the patient draw).
    if clean:
        p = _within(d, p, min_age, max_age, max_weeks)
    p = replace(p, enrolled=False)
    checks = [
        (min_age <= p.age <= max_age, f"age {p.age} is {'within' if min_age <= p.age <= max_age else 'outside'} {min_age} to {max_age} years",
         f"age {p.age} is outside {min_age} to {max_age} years"),
        (p.weeks_since_rt <= max_weeks,
         f"{p.weeks_since_rt} weeks since radiotherapy is {'within' if p.weeks_since_rt <= max_weeks else 'outside'} the {max_weeks}-week window",
         f"{p.weeks_since_rt} weeks since radiotherapy is outside the {max_weeks}-week window"),
        (lansky >= min_lansky, f"a Lansky score of {lansky} is {'at least' if lansky >= min_lansky else 'below'} {min_lansky}",
         f"a Lansky score of {lansky} is below {min_lansky}"),
        (platelets >= 100_000, f"a platelet count of {platelets:,}/µL is {'at least' if platelets >= 100_000 else 'below'} 100,000/µL",
         f"a platelet count of {platelets:,}/µL is below 100,000/µL"),
    ]
    question = d.pick((
        f"{BASED}can this patient be enrolled on {p.trial}?",
        f"Does this patient meet the enrolment criteria for {p.trial}?",
        f"{BASED}is this child a candidate for {p.drug} within {p.trial} at this point?",
        f"{BASED}and checking each of the {p.trial} enrolment criteria against this child's age, radiotherapy "
        f"timing, performance score and blood counts, can {p.she} be enrolled on the study?",
    ))
    lead = f"Enrolment on {p.trial} depends on four criteria, and each must be checked against this patient's facts."
    aside = "The MRI findings and the biopsy result are not among the criteria."
    first = (f"{p.trial} requires age {min_age} to {max_age} years, a start within {max_weeks} weeks of radiotherapy, "
             f"a Lansky score of at least {min_lansky} and platelets of at least 100,000/µL.")
    if variant == "missing":
        status = f"At screening, {p.her} platelet count was {platelets:,}/µL and {p.her} liver tests were within the protocol limits."
        steps = [first, _cap(checks[0][1]) + ", and " + checks[1][1] + ".", _cap(checks[3][1]) + ".",
                 "The Lansky performance score is needed too, but the screening results give none, so enrolment "
                 "cannot be decided and I should not assume a value."]
        answer = decline(d, f"{p.her} Lansky performance score", f"whether {p.she} meets the {p.trial} enrolment criteria cannot be determined from it")
        paragraphs = vignette(d, p, [criteria], [status], enrolled=False)
        return finish(d, paragraphs, p, question, steps, [criteria, status], answer, lead, aside)
    if variant == "conflict":
        other = d.pick(tuple(v for v in (30, 40) if v < min_lansky))
        second = f"The neurology note from the same screening visit records a Lansky performance score of {other}."
        steps = [first, _cap(checks[0][1]) + ", and " + checks[1][1] + ".",
                 f"The screening results give a Lansky score of {lansky}, but the neurology note from the same visit gives {other}.",
                 f"{lansky} meets the threshold of {min_lansky} and {other} does not, and the text does not say which is right."]
        answer = (f"The context is conflicting on {p.her} Lansky performance score at screening ({lansky} and {other}), "
                  f"so whether {p.she} meets the {p.trial} enrolment criteria cannot be decided from it.")
        paragraphs = vignette(d, p, [criteria], [status], enrolled=False)
        paragraphs.append([second])
        return finish(d, paragraphs, p, question, steps, [criteria, status, second], answer, lead, aside)
    failed = [fail for ok, _, fail in checks if not ok]
    steps = [first] + [reason[0].upper() + reason[1:] + "." for _, reason, _ in checks]
    if failed:
        steps.append(f"{len(failed)} of the four criteria {'fails' if len(failed) == 1 else 'fail'}, so {p.she} cannot be enrolled.")
        answer = f"{p.she.capitalize()} does not meet the {p.trial} enrolment criteria: {'; '.join(failed)}."
    else:
        steps.append(f"All four criteria are met, so {p.she} can be enrolled on {p.trial}.")
        answer = (f"Yes, {p.she} meets the {p.trial} enrolment criteria: age {p.age} years, {p.weeks_since_rt} weeks since "
                  f"radiotherapy, a Lansky score of {lansky} and a platelet count of {platelets:,}/µL.")
    paragraphs = vignette(d, p, [criteria], [status], enrolled=False)
    proof = [criteria, d.radiotherapy(p), status, d.opening(p)]
    return finish(d, paragraphs, p, question, steps, proof, answer, lead, aside)


def _cap(text: str) -> str:
    """First letter upper case, the rest untouched (``str.capitalize`` would lower ``µL``)."""
    return text[:1].upper() + text[1:]


def _within(d: Draws, p: Patient, min_age: int, max_age: int, max_weeks: int) -> Patient:
    """``p`` with age and weeks since radiotherapy inside the criteria (declining rows turn on one gap only)."""
    return replace(p, age=d.rng.randint(min_age, max_age), weeks_since_rt=d.rng.randint(2, max_weeks))
