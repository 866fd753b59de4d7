# %%
# The DIPG train rows under the name Unsloth's notebooks give their data (`dataset`), so the base's display
# cells show DIPG conversations: `conversations` (Unsloth's column) and `messages` (the same turns: the user
# turn holds <context> and <question>, the assistant turn the <think>/<proof>/<answer> reply). The trainer gets
# the kit's masked rows further down.
from datasets import Dataset

dataset = Dataset.from_list([{"conversations": dsa_training_messages(r), "messages": dsa_training_messages(r)}
                             for r in dsa_train_rows])
print(f"dataset: {len(dataset)} DIPG conversations")
