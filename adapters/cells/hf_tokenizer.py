# %%
# The tokenizer the kit masks with: the notebook's own when it loaded one, else MODEL_ID's (the trainer
# loads its own from the same id, so rows and trainer agree).
if not callable(globals().get("tokenizer")):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(MODEL_ID)
