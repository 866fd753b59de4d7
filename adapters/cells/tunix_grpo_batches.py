# %%
# GRPO batches in the shape the base's cells read (a GRPO-only notebook: MAX_STEPS is the GRPO stage's
# steps). dataset / train_dataset hold enough DIPG prompt batches of BATCH_SIZE for MAX_STEPS learner steps
# (so the learner reaches MAX_STEPS and its last checkpoint is the one the base restores); val_dataset is
# None and test_dataset the evaluated rows as prompt batches: the kit's evaluation cells generate and score them.
_dsa_grpo_batch = max(1, min(BATCH_SIZE, len(_dsa_grpo_records)))
_dsa_grpo_repeat = max(1, -(-MAX_STEPS * _dsa_grpo_batch // max(1, len(_dsa_grpo_records))))
dataset = (
    grain.MapDataset.source(_dsa_grpo_records)
    .shuffle(seed=SEED)
    .repeat(_dsa_grpo_repeat)
    .batch(_dsa_grpo_batch, drop_remainder=True)
)
train_dataset = dataset
val_dataset = None
test_dataset = grain.MapDataset.source(dsa_grpo_records(dsa_eval_rows)).batch(_dsa_grpo_batch)
print(f"GRPO: {len(train_dataset)} batches of {_dsa_grpo_batch} prompts for {MAX_STEPS} steps; "
      f"{len(test_dataset)} test batches")
