# %% [markdown]
# # DSA_TITLE
#
# DSA_PROVENANCE
#
# DSA_BADGE
#
# Runs on Colab, Kaggle or a local Jupyter kernel: the set-up cells detect where they are (`IN_COLAB`,
# `IN_KAGGLE`), install only what does not import, and read tokens (`HF_TOKEN`, `KAGGLE_KEY`, ...) from
# the environment or the Colab/Kaggle secrets, never from a prompt.
