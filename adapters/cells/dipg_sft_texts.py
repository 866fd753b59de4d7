# %%
# The DIPG conversations as text rows ({"text": ...}, the shape the base's formatting cell built), rendered
# with the core's Gemma-3 chat template. Training itself uses the masked batches built from the same rows.
formatted_train = [{"text": render_conversation(dsa_training_messages(row)).text} for row in dsa_train_rows]
formatted_test = [{"text": render_conversation(dsa_training_messages(row)).text} for row in dsa_eval_rows]
print(f"DIPG text rows: train {len(formatted_train)}, test {len(formatted_test)}")
