# %%
# GRPO prompts (conversational) from the DIPG train split; question/context/answer columns reach the
# reward functions (answer: the whole gold reply, as the gym expects). Prompts longer than
# MAX_PROMPT_LENGTH tokens are dropped rather than cut.
from datasets import Dataset


def dsa_grpo_rows(rows, prompt_tokenizer=None):
    """DIPG rows -> [{"prompt": messages, "question", "context", "answer"}] within MAX_PROMPT_LENGTH tokens.

    Without a tokenizer (the base notebook loads it later) lengths are not checked here.
    """
    text_tokenizer = getattr(prompt_tokenizer, "tokenizer", prompt_tokenizer)  # a processor wraps it
    out = []
    for row in rows:
        prompt = dsa_prompt_messages(row)
        if text_tokenizer is not None and len(
            text_tokenizer(model_prompt(prompt, text_tokenizer), add_special_tokens=False)["input_ids"]
        ) > MAX_PROMPT_LENGTH:
            continue
        context, question = split_user_content(row["messages"][0]["content"])
        out.append({"prompt": prompt, "question": question, "context": context, "answer": dsa_gold(row)})
    return out


# Also under its own name: an SFT stage before GRPO may rebind `dataset` to its masked rows.
dataset = dsa_grpo_dataset = Dataset.from_list(dsa_grpo_rows(dsa_train_rows, globals().get("tokenizer")))
print(f"GRPO prompts: {len(dataset)} of {len(dsa_train_rows)} kept (MAX_PROMPT_LENGTH={MAX_PROMPT_LENGTH})")
