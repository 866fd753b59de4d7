# %%
# GRPO batches in the shape the base's training cell reads: train_dataset holds enough DIPG prompt
# batches for GRPO_MAX_STEPS steps; val_dataset is None (the DIPG test rows are scored by the kit's
# evaluation cells instead).
_dsa_grpo_batch = max(1, min(BATCH_SIZE, len(_dsa_grpo_records)))
_dsa_grpo_repeat = max(1, -(-GRPO_MAX_STEPS * _dsa_grpo_batch // max(1, len(_dsa_grpo_records))))
train_dataset = grain.MapDataset.source(_dsa_grpo_records).shuffle(seed=SEED).repeat(_dsa_grpo_repeat).batch(_dsa_grpo_batch)
val_dataset = None
print(f"GRPO: {len(train_dataset)} batches of {_dsa_grpo_batch} prompts for {GRPO_MAX_STEPS} steps")
