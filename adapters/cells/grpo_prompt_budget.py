# %%
# GRPO prompt budget. The kit's prompt rows already leave out prompts longer than MAX_PROMPT_LENGTH tokens
# (never cut), so no quantile filter is needed; `maximum_length` (the base's name) is the longest kept prompt.
_dsa_text_tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # a processor wraps the tokenizer
_dsa_prompt_lengths = [
    len(_dsa_text_tokenizer(model_prompt(row["prompt"], _dsa_text_tokenizer), add_special_tokens=False)["input_ids"]) for row in dataset
]
maximum_length = max(_dsa_prompt_lengths, default=MAX_PROMPT_LENGTH - 1)
print("Max Length = ", maximum_length)
