# %%
# The GRPO stage reads the DIPG prompt rows again (the SFT stage before it rebound `dataset` to its masked
# rows): prompt, question, context and answer (the gold reply) per row.
dataset = dsa_grpo_dataset
print(f"GRPO prompts: {len(dataset)} DIPG rows; columns {dataset.column_names}")
