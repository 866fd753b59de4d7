# %%
# The chat template the kit renders, masks and stops with, in place of the base notebook's own (written for its
# math format: no turn markers, a generation prompt that opens its reasoning tag). A Gemma tokenizer gets the
# kit's Gemma-3 template; another model keeps the template it ships when that template can express a DIPG row
# (assistant role, a special end-of-turn token, the reply verbatim), else the kit's plain ChatML where its
# vocabulary has <|im_start|>/<|im_end|>; otherwise this cell stops with the reason.
print("chat template:", choose_chat_template(tokenizer))
print("stop ids:", describe_stops(tokenizer))
print(model_prompt([{"role": "user", "content": "<context>\n...\n</context>\n\n<question>\n...\n</question>"}],
                   tokenizer, generation_prefill=GENERATION_PREFILL))
