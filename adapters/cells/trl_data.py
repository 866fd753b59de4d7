# %%
# DIPG rows under the names TRL's example notebooks give their data (`train_dataset`, `test_dataset`,
# `dataset_name`), so the base's own display cells show DIPG content. Each row carries the conversation
# (`messages`, as SFTTrainer reads it) and the prompt turns (`prompt`, as GRPOTrainer reads it); the
# trainers get the kit's rows (token-exact masks for SFT, length-checked prompts for GRPO) further down.
from datasets import Dataset

dataset_name = DATASET_ID


def dsa_trl_rows(rows):
    """DIPG rows -> a datasets.Dataset with `messages` (whole conversation) and `prompt` (its prompt turns)."""
    return Dataset.from_list([{"messages": dsa_training_messages(r), "prompt": dsa_prompt_messages(r)} for r in rows])


train_dataset = dsa_trl_rows(dsa_train_rows)
test_dataset = dsa_trl_rows(dsa_test_rows)
print(f"train_dataset: {len(train_dataset)} DIPG rows, test_dataset: {len(test_dataset)}")
