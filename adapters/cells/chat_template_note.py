# %% [markdown]
# **DSA kit: this notebook keeps its model.** `MODEL_ID` is any chat model (this notebook's own by default).
# Its hand-written chat template served its math format; the kit renders, masks and stops with a template that
# can express the DIPG rows instead: Gemma-3's for a Gemma model, otherwise the model's own template when it
# writes the reply verbatim before a special end-of-turn token, else plain ChatML (Qwen, SmolLM2). The cell below
# prints which template and which stop tokens the run uses. The pre-fine-tune (where the notebook has one) trains
# the DIPG dual-stream format (`<think>` / `<proof>` / `<answer>`) on the kit's masked SFT rows before GRPO.
