# %%
# SFT inputs for Tunix's PeftTrainer with the token-exact mask: one tokenization of the whole rendered
# conversation, loss on the reply and its <end_of_turn> only (input_mask[i] weights the prediction of
# token i, Tunix's shifted convention). Offsets need a fast tokenizer: the HF one shares Gemma-3's vocabulary.
import copy

from transformers import AutoTokenizer, PreTrainedTokenizerBase

# The base's own HF fast tokenizer of the same folder is reused (a copy, so the template set here stays
# ours), not loaded a second time; anything else (Tunix's tokenizer or its TokenizerAdapter around an HF
# one, another folder) -> load it.
_dsa_base_tokenizer = globals().get("tokenizer")
if (isinstance(_dsa_base_tokenizer, PreTrainedTokenizerBase) and _dsa_base_tokenizer.is_fast
        and str(_dsa_base_tokenizer.name_or_path) == str(local_model_path)):
    dsa_hf_tokenizer = copy.copy(_dsa_base_tokenizer)
else:
    dsa_hf_tokenizer = AutoTokenizer.from_pretrained(local_model_path)
dsa_hf_tokenizer.chat_template = GEMMA_CHAT_TEMPLATE
_dsa_masked, _dsa_dropped = mask_batch([dsa_training_messages(r) for r in dsa_train_rows], dsa_hf_tokenizer, MAX_SEQ_LENGTH)
_dsa_examples = [example for _, example in _dsa_masked]
print(f"masked {len(_dsa_examples)} rows; dropped {len(_dsa_dropped)} whose reply MAX_SEQ_LENGTH={MAX_SEQ_LENGTH} would cut")
# Fewer rows than BATCH_SIZE (small runs) still make one batch.
_dsa_batch_size = max(1, min(BATCH_SIZE, len(_dsa_examples)))
train_data = []
for _start in range(0, len(_dsa_examples) - _dsa_batch_size + 1, _dsa_batch_size):
    _batch = tunix_batch(_dsa_examples[_start : _start + _dsa_batch_size], MAX_SEQ_LENGTH)
    train_data.append(TrainingInput(input_tokens=_batch["input_tokens"], input_mask=_batch["input_mask"]))
print(f"{len(train_data)} batches of {_dsa_batch_size}; trained tokens {sum(e.n_trained for e in _dsa_examples)}")
