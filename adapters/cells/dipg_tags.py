# %%
# DIPG dual-stream format: <think>…</think> <proof>…</proof> <answer>…</answer> (tags from the DSA core).
# The base notebook's tag names are kept as aliases so its remaining cells still read.
reasoning_start, reasoning_end = THINK_OPEN, THINK_CLOSE
solution_start, solution_end = ANSWER_OPEN, ANSWER_CLOSE
proof_start, proof_end = PROOF_OPEN, PROOF_CLOSE
# Inference and GRPO prompts start the reply inside <think>; rewards and scoring put the tag back.
GENERATION_PREFILL = THINK_OPEN + "\n"
SYSTEM_PROMPT = (
    "You are a careful clinical assistant for DIPG (diffuse intrinsic pontine glioma) questions. "
    "Answer only from the given context. First reason inside <think>…</think>, then quote the exact "
    "context sentences that support you inside <proof>…</proof>, then give a short final answer inside "
    "<answer>…</answer>. If the context lacks the fact or contradicts itself, say so in the answer."
)
system_prompt = SYSTEM_PROMPT  # Unsloth's notebooks spell it in lower case


def dsa_prompt_messages(row):
    """A DIPG row -> the prompt turns (system prompt folded in only when USE_SYSTEM_PROMPT)."""
    user = [m for m in row["messages"] if m["role"] == "user"][:1]
    return ([{"role": "system", "content": SYSTEM_PROMPT}] if USE_SYSTEM_PROMPT else []) + user


def dsa_training_messages(row):
    """A DIPG row -> the full conversation trained on (same prompt turns as inference, then the reply)."""
    reply = [m for m in row["messages"] if m["role"] == "assistant"][-1:]
    return dsa_prompt_messages(row) + reply


def dsa_gold(row):
    """The gold assistant string of a row (the gym's expected ``final``)."""
    return [m for m in row["messages"] if m["role"] == "assistant"][-1]["content"]
