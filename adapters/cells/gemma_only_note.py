# %% [markdown]
# **DSA kit: Gemma-3 only.** This notebook was written for another model family, with its own chat template
# and a format pre-fine-tune in its own answer format. The kit renders, masks and scores Gemma-3 turns only,
# so here `MODEL_ID` is a Gemma-3 model, the chat template is Gemma-3's, and the pre-fine-tune
# (where the notebook has one) trains the DIPG dual-stream format (`<think>` / `<proof>` / `<answer>`) on the
# kit's masked SFT rows before GRPO.
