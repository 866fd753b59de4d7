# %%
# SFT rows for TRL's SFTTrainer with the token-exact mask: pre-tokenized input_ids with completion_mask
# and assistant_masks (loss on the reply and its end-of-turn token only: <end_of_turn> for Gemma, the
# template's own, e.g. <|im_end|>, for any other model). Rows whose reply MAX_SEQ_LENGTH
# would cut are dropped and counted, never trained half-masked.
from datasets import Dataset

_dsa_text_tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # a processor wraps the tokenizer
if uses_gemma_path(_dsa_text_tokenizer):  # Gemma: the kit's template; any other model keeps its own
    _dsa_text_tokenizer.chat_template = GEMMA_CHAT_TEMPLATE
_dsa_masked, _dsa_dropped = mask_batch(
    [dsa_training_messages(r) for r in dsa_train_rows], _dsa_text_tokenizer, MAX_SEQ_LENGTH
)
print(f"masked {len(_dsa_masked)} rows; dropped {len(_dsa_dropped)} whose reply MAX_SEQ_LENGTH={MAX_SEQ_LENGTH} would cut")
dataset = dsa_sft_dataset = Dataset.from_list([to_trl_tokenized(example) for _, example in _dsa_masked])
print(f"trained tokens {sum(sum(r['completion_mask']) for r in dataset)} of {sum(len(r['input_ids']) for r in dataset)}")
