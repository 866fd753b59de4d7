"""GRPO reward functions for the dual stream, in both calling conventions.

Three rewards, each judged on the *whole* reply (a completion that starts inside a pre-filled
``<think>`` gets its opening tag back first, :func:`adapters.dsa_format.restore_prefilled_think`):

* **strict format** – ``1.0`` when :func:`adapters.dsa_format.parse_strict` accepts the reply, else ``0.0``;
* **partial format** – ``0.25`` per well-formed tag (opened once, closed once, in that order,
  non-empty) plus ``0.25`` when the three blocks come in the order think -> proof -> answer (range 0..1);
* **gym rubric** – the reward of the gym's own scorer (``med_safety_eval``, default ``RewardConfig``:
  -50..+50), times ``scale``; its **gold-aware** variant (``gym-gold-aware``) scores a reply that answers
  where the gold reply abstains or names a conflict -5 instead: the gym has no check for that case and
  scores such an answer up to +50, above the right abstention's +30.

Calling conventions (the batch columns arrive as keyword lists aligned with ``completions``):

* **Tunix** (``GRPOLearner``): ``fn(prompts: list[str], completions: list[str], **columns) -> list[float]``;
* **TRL / Unsloth** (``GRPOTrainer``): ``fn(prompts, completions, **columns)`` where a conversational
  completion is ``[{"role": "assistant", "content": "..."}]`` and a prompt a list of messages (a
  standard-format dataset passes plain strings, which are accepted too).

Ground truth for the gym reward comes from the dataset columns, looked up in this order:

1. ``messages`` – the row's own conversation (the DIPG schema): context and question are cut from
   the user turn, the gold reply is the assistant turn;
2. ``context`` + ``answer`` (+ optional ``question``) – explicit columns, ``answer`` being the whole
   gold assistant string (as the gym expects: FIELD_NOTES §2);
3. with ``answer`` but no ``context``: the context is cut from the prompt text (``<context>…</context>``).

Pre-fill: ``prefilled_think=True`` always restores ``<think>``; ``False`` never does; ``None`` (the
default) detects it per row from the prompt: a string prompt ending in ``<think>`` (trailing whitespace
allowed), or a message-list prompt whose last message is an assistant turn ending in ``<think>``.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from .dsa_format import TAGS, THINK_OPEN, _TAG_RE, parse_strict, restore_prefilled_think
from .errors import DatasetError
from .gym_scorer import GroundTruthParts, GymScorer, gold_aware_reward, ground_truth_from_messages, split_user_content

RewardFn = Callable[..., list]


# ---------------------------------------------------------------------------------------------
# Text-level scores (one reply -> one float)


def strict_format_score(reply: str) -> float:
    """``1.0`` if ``reply`` is a strict dual stream, else ``0.0``."""
    return 1.0 if parse_strict(reply).ok else 0.0


def partial_format_score(reply: str) -> float:
    """Credit per well-formed tag (0.25 each) plus 0.25 for think -> proof -> answer order.

    A tag is well-formed when it opens exactly once, closes exactly once after its opening, and
    holds non-whitespace text. The order credit needs all three well-formed and their blocks in
    sequence without overlap.
    """
    events = [(m.start(), m.end(), m.group(1) == "/", m.group(2)) for m in _TAG_RE.finditer(reply)]
    score = 0.0
    spans: dict[str, tuple[int, int]] = {}
    for tag in TAGS:
        opens = [e for e in events if e[3] == tag and not e[2]]
        closes = [e for e in events if e[3] == tag and e[2]]
        if len(opens) != 1 or len(closes) != 1:
            continue
        start, end = opens[0][1], closes[0][0]
        if end < start or not reply[start:end].strip():
            continue
        spans[tag] = (opens[0][0], closes[0][1])
        score += 0.25
    if len(spans) == 3:
        (_, t_end), (p_start, p_end), (a_start, _) = spans["think"], spans["proof"], spans["answer"]
        if t_end <= p_start and p_end <= a_start:
            score += 0.25
    return score


# ---------------------------------------------------------------------------------------------
# Convention adapters


def completion_text(completion: Any) -> str:
    """A Tunix string or a TRL message list (``[{"role": "assistant", "content": ...}]``) -> text."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content", ""))
    if isinstance(completion, (list, tuple)):
        return "".join(str(m.get("content", "")) if isinstance(m, dict) else str(m) for m in completion)
    raise TypeError(f"unsupported completion type {type(completion).__name__}")


def prompt_text(prompt: Any) -> str:
    """A prompt as text: a string as is, a message list as its contents joined by newlines."""
    if prompt is None:
        return ""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, (list, tuple)):
        return "\n".join(str(m.get("content", "")) if isinstance(m, dict) else str(m) for m in prompt)
    return str(prompt)


def prompt_prefills_think(prompt: Any) -> bool:
    """Whether the prompt ends inside an opened ``<think>`` (so the completion starts in the block)."""
    if isinstance(prompt, str):
        return prompt.rstrip().endswith(THINK_OPEN)
    if isinstance(prompt, (list, tuple)) and prompt:
        last = prompt[-1]
        if isinstance(last, dict) and last.get("role") == "assistant":
            return str(last.get("content", "")).rstrip().endswith(THINK_OPEN)
    return False


def whole_replies(prompts: Sequence[Any] | None, completions: Sequence[Any], prefilled_think: bool | None) -> list[str]:
    """Completions (either convention) -> whole replies, with a pre-filled ``<think>`` put back.

    Shapes: ``prompts`` is ``None`` or as long as ``completions``; returns ``len(completions)`` strings.
    """
    replies = []
    for index, completion in enumerate(completions):
        text = completion_text(completion)
        if prefilled_think is None:
            prompt = prompts[index] if prompts is not None and index < len(prompts) else None
            restore = prompt_prefills_think(prompt)
        else:
            restore = prefilled_think
        replies.append(restore_prefilled_think(text) if restore else text)
    return replies


def _column(columns: dict, name: str, index: int):
    values = columns.get(name)
    if values is None:
        return None
    if hasattr(values, "tolist") and not isinstance(values, (str, bytes)):
        values = values.tolist()  # Tunix's GRPO learner hands batch columns over as numpy arrays
    if isinstance(values, (list, tuple)):
        return values[index] if index < len(values) else None
    return values  # a scalar broadcast to every row


def ground_truth_for(index: int, prompt: Any, columns: dict) -> GroundTruthParts:
    """Ground truth of batch row ``index`` from the dataset columns (see the module docstring)."""
    messages = _column(columns, "messages", index)
    if isinstance(messages, (list, tuple)) and messages:
        return ground_truth_from_messages(messages, where=f"batch row {index}")
    answer = _column(columns, "answer", index)
    if not isinstance(answer, str):
        raise DatasetError(
            f"batch row {index}: the gym reward needs a 'messages' column or an 'answer' column "
            "(the whole gold assistant string)"
        )
    context = _column(columns, "context", index)
    question = _column(columns, "question", index)
    if not isinstance(context, str):
        context, cut_question = split_user_content(prompt_text(prompt))
        question = question if isinstance(question, str) else cut_question
    return GroundTruthParts(context=context, question=question if isinstance(question, str) else "", gold=answer)


# ---------------------------------------------------------------------------------------------
# Reward functions (both conventions accept the same arguments; the names say which trainer uses them)


def strict_format_reward(prompts=None, completions=(), prefilled_think: bool | None = None, **columns) -> list[float]:
    """``fn(prompts, completions, **columns)``: 1.0 per strict dual stream, else 0.0."""
    return [strict_format_score(r) for r in whole_replies(prompts, completions, prefilled_think)]


def partial_format_reward(prompts=None, completions=(), prefilled_think: bool | None = None, **columns) -> list[float]:
    """``fn(prompts, completions, **columns)``: partial credit in 0..1 (see :func:`partial_format_score`)."""
    return [partial_format_score(r) for r in whole_replies(prompts, completions, prefilled_think)]


_SCORER: GymScorer | None = None


def _scorer() -> GymScorer:
    # One gym manager per process: building it per call would re-compile the gym's regexes.
    global _SCORER
    if _SCORER is None:
        _SCORER = GymScorer()
    return _SCORER


def _gym_scores(prompts, completions, prefilled_think: bool | None, columns: dict):
    """Yield ``(ground truth, the gym's GymScore)`` per completion, in order."""
    scorer = _scorer()
    for index, reply in enumerate(whole_replies(prompts, completions, prefilled_think)):
        prompt = prompts[index] if prompts is not None and index < len(prompts) else None
        truth = ground_truth_for(index, prompt, columns)
        yield truth, scorer.score(reply, truth)


def gym_rubric_reward(
    prompts=None, completions=(), prefilled_think: bool | None = None, scale: float = 1.0, **columns
) -> list[float]:
    """``fn(prompts, completions, **columns)``: the gym's reward per completion, times ``scale``."""
    return [score.reward * scale for _, score in _gym_scores(prompts, completions, prefilled_think, columns)]


def gym_gold_aware_reward(
    prompts=None, completions=(), prefilled_think: bool | None = None, scale: float = 1.0, **columns
) -> list[float]:
    """``fn(prompts, completions, **columns)``: the gym's reward per completion, except that a reply answering
    where the gold reply abstains or names a conflict scores as a wrong abstention (-5), times ``scale``
    (:func:`adapters.gym_scorer.gold_aware_reward`: the gym itself scores such a reply up to +50, above the
    right abstention's +30, so GRPO on the raw rubric pays the model to invent the missing fact).
    """
    scorer = _scorer()
    gold_branches: dict[str, str] = {}  # a GRPO group shares one gold reply: score it once
    rewards = []
    for truth, score in _gym_scores(prompts, completions, prefilled_think, columns):
        if truth.gold not in gold_branches:
            gold_branches[truth.gold] = scorer.score(truth.gold, truth).branch
        rewards.append(gold_aware_reward(score.reward, score.branch, gold_branches[truth.gold], scorer.config) * scale)
    return rewards


def make_reward(kind: str, convention: str, prefilled_think: bool | None = None, scale: float = 1.0) -> RewardFn:
    """A reward function with its options bound and a ``__name__`` the trainers log.

    ``kind``: ``strict`` | ``partial`` | ``gym`` | ``gym-gold-aware``; ``convention``: ``tunix`` | ``trl`` (``unsloth`` is ``trl``).
    The Tunix variant rejects message-list completions and the TRL one accepts both, so a mix-up
    in a notebook fails loudly instead of scoring the repr of a list.
    """
    base = {"strict": strict_format_reward, "partial": partial_format_reward, "gym": gym_rubric_reward,
            "gym-gold-aware": gym_gold_aware_reward}
    if kind not in base:
        raise ValueError(f"unknown reward kind {kind!r}; choose strict, partial, gym or gym-gold-aware")
    if convention == "unsloth":
        convention = "trl"
    if convention not in ("tunix", "trl"):
        raise ValueError(f"unknown convention {convention!r}; choose tunix or trl")
    fn = base[kind]
    extra = {"scale": scale} if kind.startswith("gym") else {}

    def reward(prompts=None, completions=(), **columns):
        if convention == "tunix" and any(not isinstance(c, str) for c in completions):
            raise TypeError("Tunix rewards take completions as plain strings")
        return fn(prompts, completions, prefilled_think=prefilled_think, **extra, **columns)

    reward.__name__ = {"gym": "gym_rubric_reward", "gym-gold-aware": "gym_gold_aware_reward"}.get(kind, f"{kind}_format_reward")
    reward.__qualname__ = reward.__name__
    reward.__doc__ = f"{kind} reward, {convention} convention (prefilled_think={prefilled_think})."
    return reward


def tunix_rewards(prefilled_think: bool | None = None, gym_scale: float = 1.0, gym_kind: str = "gym") -> list[RewardFn]:
    """The three rewards for ``GRPOLearner(reward_fns=...)``; ``gym_kind`` as in :func:`trl_rewards`."""
    return [
        make_reward("strict", "tunix", prefilled_think),
        make_reward("partial", "tunix", prefilled_think),
        make_reward(gym_kind, "tunix", prefilled_think, gym_scale),
    ]


def trl_rewards(prefilled_think: bool | None = None, gym_scale: float = 1.0, gym_kind: str = "gym") -> list[RewardFn]:
    """The three rewards for ``GRPOTrainer(reward_funcs=...)`` (TRL and Unsloth); ``gym_kind="gym-gold-aware"``
    swaps the raw rubric for :func:`gym_gold_aware_reward`."""
    return [
        make_reward("strict", "trl", prefilled_think),
        make_reward("partial", "trl", prefilled_think),
        make_reward(gym_kind, "trl", prefilled_think, gym_scale),
    ]
