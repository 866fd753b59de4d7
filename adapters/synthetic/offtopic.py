"""``anti_knowledge`` rows: a real-looking DIPG context (vignette or literature) and an off-topic question.

The gold declines because the text says nothing on the subject, however well known the answer is;
its proof quotes what the context *is* about. Shape: ``Draws -> Draft``.
"""

from __future__ import annotations

from ..synthetic_dipg import OFF_TOPIC
from .clinical import vignette
from .draws import Draws, article
from .gold import Draft

ANSWERS = (
    "The provided text does not contain information about {topic}.",
    "The context does not contain {topic}: it only covers {about}.",
    "The provided context does not contain that information; it says nothing about {topic}.",
)
MIN_CHARS = 445  # FIELD_NOTES §7's shortest real context
LEADS = ("", "", "Based solely on the information provided: ", "According to the text, ")


def off_topic(d: Draws) -> Draft:
    question, topic = d.pick(OFF_TOPIC)
    lead = d.pick(LEADS)
    if len(question) < 30 and not lead:  # FIELD_NOTES §7: real questions have 30 characters or more
        lead = LEADS[2]
    if lead:
        question = lead + question[0].lower() + question[1:]
    if d.rng.random() < 0.6:
        p = d.patient()
        status = [d.clinical_extra(p)]
        paragraphs = [paragraph for paragraph in vignette(d, p, [], status) if paragraph]
        d.pad(paragraphs, p, avoid=p.trial, target=d.target_chars())
        about = f"{article(p.age)} {p.age}-year-old with DIPG treated with radiotherapy and {p.drug} on {p.trial}"
        quoted = [paragraphs[0][0], d.enrolment(p)]
    else:
        statements = d.literature(avoid="", k=d.rng.randint(3, 12))
        while len(" ".join(statements)) < MIN_CHARS:
            statements += d.literature(avoid="", k=1)
        cut = d.rng.randint(1, len(statements) - 1)
        paragraphs = [statements[:cut], statements[cut:]]
        about = "published results of DIPG trials and registries"
        quoted = [statements[0]]
    steps = [f"The question asks about {topic}.",
             f"The context is about {about}.",
             f"No sentence in it concerns {topic}, and an answer from general knowledge would not be grounded in the text, "
             f"so the right reply is to say the text does not contain it."]
    answer = d.pick(ANSWERS).format(topic=topic, about=about)
    return Draft(paragraphs, question, steps, quoted, answer)
