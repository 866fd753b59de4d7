# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/REPO/blob/main/NOTEBOOK_PATH)
#
# Runs on Colab, Kaggle or a local Jupyter kernel: the set-up cells detect where they are (`IN_COLAB`,
# `IN_KAGGLE`), install only what does not import, and read tokens (`HF_TOKEN`, `KAGGLE_KEY`, ...) from
# the environment or the Colab/Kaggle secrets, never from a prompt. Replace `OWNER/REPO` with the
# repository that holds this notebook (see notebooks/README.md).
