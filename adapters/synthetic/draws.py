"""Seeded draws for the v2 generator: a patient, the clinical sentences about them, filler paragraphs.

Vocabulary and the literature-statement filler (:meth:`_Rows.fact`) come from the v1 module
(:mod:`adapters.synthetic_dipg`), so both generators speak of the same drugs, genes and registries;
v1 itself is untouched. All randomness is the one ``random.Random`` passed in.

Sentences never contain a double quote (proofs quote them as ``- "…"``) and never use the gym's
abstention phrases ("no evidence", "not specify", ...) outside rows that decline, so a gold reply is
judged by what it answers, not by a stray keyword in a quoted sentence.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from ..synthetic_dipg import DRUGS, INSTITUTIONS, MUTATIONS, RADIOTHERAPY, REGISTRIES, SYMPTOMS, TOXICITIES, _Rows

K27M_VARIANTS = ("H3 K27M", "H3.3 K27M", "H3.1 K27M")
CO_MUTATIONS = ("ACVR1", "TP53", "PPM1D", "PIK3CA", "PDGFRA", "ATRX")
SIGNS = ("a left sixth nerve palsy", "right-sided hemiparesis", "bilateral facial weakness", "truncal ataxia",
         "dysmetria on finger-nose testing", "reduced gag reflex", "upbeat nystagmus", "brisk reflexes on the left")
ENHANCEMENT = ("minimal", "patchy", "faint peripheral", "focal nodular")
SCHEDULES = ("once weekly", "once daily", "twice weekly", "on days 1 to 5 of each 28-day cycle",
             "on days 1 to 21 of each 28-day cycle")
PHASES = ("I", "I/II", "II")
CLINICAL_EXTRAS = (
    "{Her} family reported a decline in school performance over the preceding months.",
    "A ventriculoperitoneal shunt was placed for obstructive hydrocephalus at diagnosis.",
    "Dexamethasone was started at diagnosis and tapered to {steroid} mg per day after radiotherapy.",
    "{She} lives with {her} parents and attends a local primary school.",
    "Baseline audiology and echocardiography were unremarkable.",
    "A nasogastric tube was considered for dysphagia but was not required.",
    "Palliative care was introduced at diagnosis to support the family.",
    "{She} received ondansetron before each dose for nausea.",  # on treatment only (see clinical_extra)
    "The tumour board reviewed the imaging before treatment began.",
    "Physiotherapy was arranged for gait training after radiotherapy.",
)


# Review-style statements beside v1's filler facts: the evidence base the real rows cite.
LITERATURE = (
    "A phase {phase} trial of {drug} in {n} children with newly diagnosed DIPG reported a median overall survival of "
    "{os} months, compared with {hist} months in matched historical controls.",
    "In a retrospective series of {n} children from {inst}, re-irradiation at progression was followed by a median "
    "survival of {m} months from its start.",
    "In preclinical models {drug} crossed the blood-brain barrier, with tumour concentrations reaching {pct} percent of "
    "plasma levels.",
    "In a cohort of {n} children, tumours with {mut} alterations were associated with a median overall survival of "
    "{a} months, against {b} months for the rest of the cohort.",
    "The {reg} registry recorded {n} children with DIPG between {y1} and {y2}, and {pct} percent of them underwent "
    "diagnostic biopsy.",
    "Hypofractionated radiotherapy of {rt} gave survival similar to conventional fractionation in a randomised trial "
    "of {n} children.",
    "Dose-limiting toxicities of {drug} in its phase I escalation included grade {g} {tox} at {dose} mg/m2.",
    "A consensus statement from {inst} recommends MRI every {w} weeks during experimental therapy for DIPG.",
    "Median time from diagnosis to death in the {reg} registry was {survival} months, and {two_year} percent of "
    "children survived two years.",
    "Combining {drug} with {drug2} after radiotherapy was studied in {n} children, with grade 3 or higher {tox} in "
    "{pct} percent of them.",
)


@dataclass(frozen=True)
class Patient:
    """One child with DIPG: what every clinical scenario may mention about them."""

    age: int
    sex: str  # "girl" | "boy"
    k27m: str
    co_mutation: str
    symptoms: tuple[str, str, str]
    signs: tuple[str, str]
    weeks_of_symptoms: int
    radiotherapy: str
    weeks_since_rt: int
    drug: str
    trial: str
    phase: str
    dose: int  # mg/m2
    schedule: str
    enrolled: bool = True  # False: being screened for the trial, not yet treated

    @property
    def she(self) -> str:
        return "she" if self.sex == "girl" else "he"

    @property
    def her(self) -> str:
        return "her" if self.sex == "girl" else "his"


class Draws(_Rows):
    """v1's seeded draws (``pick``, ``trial``, ``fact`` …) plus patients and clinical sentences."""

    def __init__(self, rng: random.Random):
        super().__init__(rng)

    def patient(self, drug: str | None = None) -> Patient:
        r = self.rng
        symptoms = tuple(self.distinct(SYMPTOMS, 3))
        return Patient(
            age=r.randint(3, 15), sex=self.pick(("girl", "boy")), k27m=self.pick(K27M_VARIANTS),
            co_mutation=self.pick(CO_MUTATIONS), symptoms=symptoms, signs=tuple(self.distinct(SIGNS, 2)),
            weeks_of_symptoms=r.randint(2, 10), radiotherapy=self.pick(RADIOTHERAPY)[0], weeks_since_rt=r.randint(2, 12),
            drug=drug or self.pick(DRUGS), trial=self.trial(), phase=self.pick(PHASES),
            dose=self.pick((20, 25, 30, 40, 50, 60, 75, 80, 90, 100, 120, 125, 150, 180, 200, 250)),
            schedule=self.pick(SCHEDULES),
        )

    # -- sentences about a patient ----------------------------------------------------------------
    def presentation(self, p: Patient) -> list[str]:
        """Presentation, examination and MRI: the opening paragraph of a vignette."""
        return [
            self.opening(p),
            f"Neurological examination found {p.signs[0]} and {p.signs[1]}.",
            f"MRI showed an expansile T2-hyperintense lesion centred in the pons, involving about "
            f"{self.rng.randint(55, 95)} percent of its axial diameter, with {self.pick(ENHANCEMENT)} contrast enhancement.",
        ]

    def opening(self, p: Patient) -> str:
        """The vignette's first sentence (age, sex, symptoms); a function of ``p`` alone."""
        s1, s2, s3 = p.symptoms
        return f"{article(p.age).capitalize()} {p.age}-year-old {p.sex} presented with {s1}, {s2} and {s3} that had developed over {p.weeks_of_symptoms} weeks."

    def biopsy(self, p: Patient) -> str:
        return (f"Stereotactic biopsy confirmed a diffuse midline glioma with an {p.k27m} mutation "
                f"and a co-occurring {p.co_mutation} mutation.")

    def radiotherapy(self, p: Patient) -> str:
        return f"{p.she.capitalize()} completed focal radiotherapy of {p.radiotherapy} {p.weeks_since_rt} weeks ago."

    def enrolment(self, p: Patient) -> str:
        return (f"{p.she.capitalize()} was then enrolled on {p.trial}, a phase {p.phase} study of {p.drug} "
                f"given at {p.dose} mg/m2 {p.schedule}.")

    def screening(self, p: Patient) -> str:
        """Instead of :meth:`enrolment` where the question is whether the child may enrol."""
        return (f"{p.she.capitalize()} is now being screened for {p.trial}, a phase {p.phase} study of {p.drug} "
                f"given at {p.dose} mg/m2 {p.schedule}.")

    def clinical_extra(self, p: Patient) -> str:
        """One detail of the clinical course that no question depends on."""
        templates = CLINICAL_EXTRAS if p.enrolled else tuple(t for t in CLINICAL_EXTRAS if "each dose" not in t)
        template = self.pick(templates)
        return template.format(
            She=p.she.capitalize(), Her=p.her.capitalize(), she=p.she, her=p.her, steroid=self.pick((1, 2, 3, 4)),
        )

    def fact(self, avoid: str = "") -> str:
        """A filler statement: v1's fact templates or a review-style one (:data:`LITERATURE`), half and half.

        A v1 fact naming the same drug twice ("tested X with X") is drawn again.
        """
        while True:
            if self.rng.random() < 0.5:
                sentence = super().fact(avoid)
                match = re.search(r"tested (\S+) with (\S+) ", sentence)
                if match and match.group(1) == match.group(2):
                    continue
                return sentence
            sentence = self._review()
            if not avoid or avoid not in sentence:
                return sentence

    def _review(self) -> str:
        r = self.rng
        drug, drug2 = self.distinct(DRUGS, 2)
        y1 = r.randint(1995, 2012)
        os_months = round(r.uniform(9.0, 22.0), 1)
        return self.pick(LITERATURE).format(
            phase=self.pick(("I", "I/II", "II")), drug=drug, drug2=drug2, n=r.randint(12, 220),
            os=os_months, hist=round(os_months - r.uniform(0.5, 4.0), 1), inst=self.pick(INSTITUTIONS),
            m=round(r.uniform(3.0, 14.0), 1), pct=r.randint(5, 90), mut=self.pick(MUTATIONS),
            a=round(r.uniform(6.0, 18.0), 1), b=round(r.uniform(6.0, 18.0), 1), reg=self.pick(REGISTRIES),
            y1=y1, y2=y1 + r.randint(5, 12), rt=self.pick(RADIOTHERAPY)[0], g=r.randint(3, 4),
            survival=round(r.uniform(8.0, 14.0), 1), two_year=r.randint(2, 12), tox=self.pick(TOXICITIES), dose=self.pick((20, 30, 45, 60, 90, 125, 150, 250)), w=self.pick((6, 8, 12)),
        )

    def literature(self, avoid: str, k: int) -> list[str]:
        """``k`` distinct literature-style statements that never name ``avoid`` (the row's trial)."""
        out: list[str] = []
        while len(out) < k:
            fact = self.fact(avoid=avoid)
            if fact not in out:
                out.append(fact)
        return out

    def target_chars(self) -> int:
        """A context length to pad a vignette towards (FIELD_NOTES §7: 445-3,891, median ~1,556)."""
        return int(self.rng.triangular(450, 2700, 1350))

    def pad(self, paragraphs: list[list[str]], p: Patient | None, avoid: str, target: int, max_paragraphs: int = 6) -> None:
        """Add clinical details to the vignette and a literature paragraph until ``target`` characters.

        Shapes: ``paragraphs`` (P, sentences) is extended in place to at most ``max_paragraphs``.
        Clinical details join the first paragraph that tells the clinical story; literature goes in
        a final background paragraph (the real rows sometimes close with the evidence base).
        """
        extras_left = 3 if p is not None else 0
        background: list[str] = []
        while _chars(paragraphs + ([background] if background else [])) < target:
            if extras_left and self.rng.random() < 0.5:
                extra = self.clinical_extra(p)
                if not any(extra in sentences for sentences in paragraphs):
                    paragraphs[min(1, len(paragraphs) - 1)].append(extra)
                extras_left -= 1
                continue
            if len(background) >= 6:
                break
            fact = self.fact(avoid=avoid)
            if fact not in background:
                background.append(fact)
        if background:
            if len(paragraphs) < max_paragraphs:
                paragraphs.append(background)
            else:
                paragraphs[-1].extend(background)


def article(number: int | float) -> str:
    """``"an"`` before numbers read with a vowel sound (8, 11, 18, 80-89, 800…), else ``"a"``."""
    digits = str(int(number))
    spoken_vowel = digits.startswith("8") or digits in ("11", "18") or (len(digits) == 5 and digits[:2] in ("11", "18"))
    return "an" if spoken_vowel else "a"


def _chars(paragraphs: list[list[str]]) -> int:
    return len(context_text(paragraphs))


def context_text(paragraphs: list[list[str]]) -> str:
    """Paragraphs of sentences -> the context: sentences joined by a space, paragraphs by a blank line."""
    return "\n\n".join(" ".join(sentences) for sentences in paragraphs if sentences)
