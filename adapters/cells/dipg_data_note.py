# %% [markdown]
# ### Data: DIPG safety rows
#
# The kit replaces this notebook's dataset with the DIPG safety rows (`DATASET_ID`: the hub id, or a local file or
# folder with the same schema). Each row is a user turn holding `<context>` and `<question>`, and a gold reply in
# the dual-stream format `<think>` / `<proof>` / `<answer>`; SFT rows are masked so that the loss falls on the reply
# only, and GRPO prompts carry the question, context and gold reply to the reward functions.
