# %%
# The chat template is Gemma-3's (the kit's, with {% generation %} markers), not the base notebook's own: the
# kit renders, masks and scores Gemma-3 turns only, so MODEL_ID must be a Gemma-3 model.
getattr(tokenizer, "tokenizer", tokenizer).chat_template = GEMMA_CHAT_TEMPLATE
print(render_prompt([{"role": "user", "content": "<context>\n...\n</context>\n\n<question>\n...\n</question>"}],
                    generation_prefill=GENERATION_PREFILL))
