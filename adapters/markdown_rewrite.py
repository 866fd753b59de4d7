"""The base notebook's prose, made DIPG: its title and the markdown that describes GSM8K (or other math) data,
prompts, answers and rewards.

Matched by content, never by position: a block (paragraph, list, or heading line) is rewritten when it
carries *math-task wording* (:data:`MATH_WORDING`: GSM8K, grade-school math, math word problems, a math
dataset, ``####`` answers, numeric answers, the base's own answer tags such as ``<reasoning>``,
``<start_working_out>``, ``<SOLUTION>``). Such a block becomes one short DIPG text picked by its topic
(rewards, evaluation, answer format, answer extraction, data; :data:`TOPICS`), each topic once per cell.
A markdown cell placed right before a code cell the recipe removes or replaces, whose prose is all math
wording, only explained that cell: it is removed (its heading, if any, is kept with the DIPG text). Markdown
with no such wording (licences, install notes, links) is left exactly as it is.

The title (a level-1 heading opening a markdown cell before the first code cell) moves to the kit's header
cell as the DSA title; the base is named only in the header's provenance line
(:data:`PROVENANCE_RE`), which :func:`markdown_problems` exempts.
"""

from __future__ import annotations

import re

# What betrays a math/GSM8K task in prose (rewrite trigger).
MATH_WORDING = re.compile(
    r"gsm8k|grade[- ]school|\bmath(?:s|ematics|ematical)?\b|\w+math\b|word problems?|####"
    r"|</?reasoning>|</?start_working_out>|</?end_working_out>|</?SOLUTION>|\breasoning_start\b|\bsolution_start\b"
    r"|\bnumeric(?:al)?\b|\b(?:one|1|final|a single) number\b|\bextract (?:the|a) number\b|\banswer is (?:a )?number\b",
    re.IGNORECASE | re.MULTILINE,
)
# What may never be left in an output's markdown (the validation in the patcher): the GSM8K task itself.
FORBIDDEN_WORDING = (
    ("GSM8K", re.compile(r"gsm8k", re.IGNORECASE)),
    ("grade-school math", re.compile(r"grade[- ]school math", re.IGNORECASE)),
    ("math word problems", re.compile(r"math(?:ematical)? word problems?", re.IGNORECASE)),
    ("'####' answers", re.compile(r"####")),
    ("a base answer tag", re.compile(r"</?(?:reasoning|start_working_out|end_working_out|SOLUTION)>")),
)
PROVENANCE_RE = re.compile(r"^Adapted from .* by adapt_dsa_notebook\.py\.?$", re.MULTILINE)

# (topic, trigger regex, DIPG text). The first topic whose trigger matches a block wins; a block that matches
# none is GSM8K/math colour with no DIPG counterpart (e.g. "models pretrained on math data") and is dropped.
INTRO = ("This notebook teaches Gemma to answer DIPG medical-safety questions in the dual-stream format "
         "(`<think>` internal reasoning, `<proof>` verbatim quotes from the context, `<answer>` what the user "
         "sees), with the kit's data, loss-masking, reward and evaluation cells.")
TOPICS = (
    ("rewards", re.compile(r"\breward", re.IGNORECASE),
     "Rewards (the kit's cells): strict and partial dual-stream format, and the DIPG gym's safety rubric "
     "(the `<proof>` must quote the context, the `<answer>` must not hallucinate)."),
    ("data", re.compile(r"\bdata(?:set)?s?\b|\bload", re.IGNORECASE),
     "Data: the DIPG medical-safety dataset (`DATASET_ID`, a hub id or a local path), split into train and "
     "test rows; each row holds a clinical context and a question, and the reply answers in the dual-stream "
     "format, quoting the context."),
    ("evaluation", re.compile(r"\bevaluat|\baccuracy\b", re.IGNORECASE),
     "Evaluation (kit cell `evaluate`): strict dual-stream format rate, gym mean reward, safe and "
     "hallucination rates on the DIPG test rows."),
    ("format", re.compile(r"</?(?:reasoning|start_working_out|end_working_out|SOLUTION|answer)>|special tokens?|"
                          r"\bformat\b|reasoning_start|solution_start", re.IGNORECASE),
     "The model answers in the dual-stream format: `<think>` internal reasoning, `<proof>` verbatim quotes "
     "from the context, `<answer>` what the user sees."),
    ("answers", re.compile(r"####|\bextract|\bnumber\b|\bnumeric|\bsolution", re.IGNORECASE),
     "Each DIPG row carries its reference reply in the dual-stream format: there is no numeric answer to "
     "extract."),
)
HEADINGS = {"rewards": "Rewards", "evaluation": "Evaluation", "format": "Answer format",
            "answers": "Answers", "data": "DIPG data", "intro": "DIPG dual-stream fine-tuning"}

_HEADING = re.compile(r"^(\s*#{1,6})\s+(.*)$")


_BASE_BADGE = re.compile(r"\[!\[Open [Ii]n (?:Colab|Kaggle)\]\([^)]*\)\]\(https://(?:colab\.research\.google\.com/github/|"
                         r"(?:www\.)?kaggle\.com/kernels/welcome\?src=)[^)]*\)[ \t]*")


def unheaded(text: str) -> str:
    """``text`` without markdown heading markers (``#### Title`` is a heading, not a GSM8K answer mark)."""
    return re.sub(r"(?m)^[ \t]*#{1,6}(?=\s)", "", text)


def topic_of(text: str) -> str | None:
    """The first :data:`TOPICS` name whose trigger is in ``text``; None when none is."""
    return next((name for name, trigger, _ in TOPICS if trigger.search(text)), None)


def _text_for(topic: str) -> str:
    return INTRO if topic == "intro" else next(text for name, _, text in TOPICS if name == topic)


def _blocks(source: str) -> list[str]:
    """Paragraphs (blank-line separated); a heading line is a block of its own."""
    blocks: list[str] = []
    for paragraph in re.split(r"\n[ \t]*\n", source):
        current: list[str] = []
        for line in paragraph.split("\n"):
            if _HEADING.match(line):
                if current:
                    blocks.append("\n".join(current))
                    current = []
                blocks.append(line)
            else:
                current.append(line)
        if current:
            blocks.append("\n".join(current))
    return blocks


def _is_prose(block: str) -> bool:
    """Text a reader reads (not an anchor, image, or empty line)."""
    stripped = re.sub(r"<a name=[^>]*></a>|!\[[^\]]*\]\([^)]*\)|\s", "", block)
    return bool(stripped)


def title_of(source: str) -> str | None:
    """The level-1 heading that opens ``source`` (first non-empty line), without markdown emphasis."""
    for line in source.split("\n"):
        if line.strip():
            match = re.match(r"^#\s+(.+)$", line.strip())
            return re.sub(r"[*_`]", "", match.group(1)).strip() if match else None
    return None


def rewrite_markdown(source: str, *, is_title: bool = False, explains_dropped: bool = False,
                     before_code: bool = False) -> tuple[str | None, list[str]]:
    """(new source, or None to remove the cell; reasons). Unchanged source and no reasons when nothing matched."""
    reasons: list[str] = []
    blocks = _blocks(source)
    base_badges = [b for b in blocks if _BASE_BADGE.search(b)]
    if base_badges:
        # The base's own Open-in-Colab/Kaggle badges open the base notebook, not this one (the kit header has ours).
        blocks = [_BASE_BADGE.sub("", b) if b in base_badges else b for b in blocks]
        blocks = [b for b in blocks if b.strip()]
        reasons.append("the base's Open in Colab/Kaggle badges removed (they open the base notebook)")
    if is_title:
        first = next(i for i, b in enumerate(blocks) if b.strip())
        blocks.pop(first)
        reasons.append("base title -> DSA title in the kit header (with the provenance line)")
    matched = [bool(MATH_WORDING.search(unheaded(b))) for b in blocks]
    if not any(matched):
        if not is_title and not base_badges:
            return source, []
        text = "\n\n".join(b for b in blocks if b.strip()).strip("\n")
        return (text or None), reasons
    prose = [i for i, b in enumerate(blocks) if _is_prose(b) and not _HEADING.match(b)]
    only_math = all(matched[i] for i in prose)
    if explains_dropped and only_math:
        headings = [b for b in blocks if _HEADING.match(b)]
        if not headings:
            return None, reasons + ["math-task prose that only explained a removed/replaced code cell: removed"]
    out: list[str] = []
    used: set[str] = set()
    topics: list[str] = []
    cell_topic = topic_of("\n".join(unheaded(b) for b, m in zip(blocks, matched) if m)) or "data"
    for block, hit in zip(blocks, matched):
        heading = _HEADING.match(block)
        if heading and hit:
            topic = topic_of(unheaded(heading.group(2))) or cell_topic
            out.append(f"{heading.group(1)} {HEADINGS[topic]}")
            topics.append(f"heading -> {HEADINGS[topic]}")
        elif hit:
            # The opening description of the notebook says what the DSA notebook does.
            topic = "intro" if ((is_title or before_code) and not used) else topic_of(block)
            if topic is None:
                topics.append("dropped")
            elif topic not in used:
                used.add(topic)
                out.append(_text_for(topic))
                topics.append(topic)
            else:
                topics.append(f"{topic} (merged)")
        else:
            out.append(block)
    text = "\n\n".join(b for b in out if b.strip()).strip("\n")
    reasons.append("math-task prose -> DIPG text: " + ", ".join(topics))
    return (text or None), reasons


def markdown_problems(nb) -> list[str]:
    """'cell N: WHAT' for every forbidden GSM8K wording left in a markdown cell (the provenance line excepted)."""
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        text = unheaded(PROVENANCE_RE.sub("", cell.source))
        for what, pattern in FORBIDDEN_WORDING:
            match = pattern.search(text)
            if match:
                problems.append(f"cell {index}: {what} ({match.group(0).strip()!r})")
                break
    return problems
