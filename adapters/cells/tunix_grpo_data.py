# %%
# GRPO prompts from the DIPG train split, rendered as in SFT and pre-filled with <think> as inference is.
# Columns question/context/answer reach the reward functions (answer: the whole gold reply, as the gym
# expects). Prompts longer than MAX_PROMPT_LENGTH tokens are dropped rather than cut.
import grain


def dsa_grpo_records(rows, prompt_tokenizer=None):
    """DIPG rows -> [{"prompts": str, "question", "context", "answer"}] within MAX_PROMPT_LENGTH tokens.

    Without a tokenizer (the base notebook loads it later) lengths are not checked here.
    """
    records = []
    for row in rows:
        prompt = render_prompt(dsa_prompt_messages(row), generation_prefill=GENERATION_PREFILL)[len(BOS) :]
        if prompt_tokenizer is not None and len(prompt_tokenizer.encode(prompt)) > MAX_PROMPT_LENGTH:
            continue
        context, question = split_user_content(row["messages"][0]["content"])
        records.append({"prompts": prompt, "question": question, "context": context, "answer": dsa_gold(row)})
    return records


_dsa_prompt_tokenizer = globals().get("tokenizer")
_dsa_grpo_records = dsa_grpo_records(dsa_train_rows, _dsa_prompt_tokenizer)
if _dsa_prompt_tokenizer is None:
    print(f"GRPO prompts: {len(_dsa_grpo_records)} (lengths unchecked: no tokenizer yet; MAX_PROMPT_LENGTH={MAX_PROMPT_LENGTH})")
else:
    print(f"GRPO prompts: {len(_dsa_grpo_records)} of {len(dsa_train_rows)} fit MAX_PROMPT_LENGTH={MAX_PROMPT_LENGTH}")
dataset = grain.MapDataset.source(_dsa_grpo_records).shuffle(seed=SEED).batch(BATCH_SIZE)
