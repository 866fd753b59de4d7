# %%
# The same evaluation after the GRPO half, beside the earlier figures and the gold ceiling.
dsa_run_evaluation("after GRPO")
