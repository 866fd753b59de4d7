# %%
# The masked DIPG batches in the shape the base's training cell reads: train_grain cycles train_data
# to MAX_STEPS optimiser steps (times gradient accumulation, where the base sets it); eval_grain holds
# the evaluation rows, masked the same way.
_dsa_accumulate = int(globals().get("GRADIENT_ACCUMULATION_STEPS") or 1)
train_grain = [train_data[_i % len(train_data)] for _i in range(MAX_STEPS * _dsa_accumulate)]
_dsa_eval_masked, _ = mask_batch([dsa_training_messages(r) for r in dsa_eval_rows], dsa_hf_tokenizer, MAX_SEQ_LENGTH)
_dsa_eval_examples = [example for _, example in _dsa_eval_masked]
eval_grain = []
for _start in range(0, len(_dsa_eval_examples) - _dsa_batch_size + 1, _dsa_batch_size):
    _batch = tunix_batch(_dsa_eval_examples[_start : _start + _dsa_batch_size], MAX_SEQ_LENGTH)
    eval_grain.append(TrainingInput(input_tokens=_batch["input_tokens"], input_mask=_batch["input_mask"]))
print(f"SFT: {len(train_grain)} training batches ({MAX_STEPS} steps x {_dsa_accumulate} accumulated), {len(eval_grain)} eval batches")
