# %%
# Inference: the training chat rendering (the tokenizer's template; Gemma-3's for Gemma), the reply pre-filled
# with <think>, greedy, and generation stops on the template's end of turn as well as EOS (Gemma: <end_of_turn>
# 106 and <eos> 1; ChatML: <|im_end|>): stopping on EOS alone runs past the turn.
import torch

EOS_TOKENS = list(stop_token_ids(tokenizer))
print("generation stops on:", describe_stops(tokenizer))


def dsa_generate(prompts, max_new_tokens=None):
    """Prompt message lists -> whole replies (the pre-filled <think> put back)."""
    text_tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # a processor wraps the tokenizer
    pad_id = text_tokenizer.pad_token_id if text_tokenizer.pad_token_id is not None else EOS_TOKENS[-1]
    replies = []
    for messages in prompts:
        text = model_prompt(messages, text_tokenizer, generation_prefill=GENERATION_PREFILL)
        encoded = text_tokenizer(text, add_special_tokens=False, return_tensors="pt").to(model.device)
        with torch.no_grad():
            output = model.generate(
                **encoded,
                max_new_tokens=max_new_tokens or MAX_NEW_TOKENS,
                do_sample=False,
                eos_token_id=EOS_TOKENS,
                pad_token_id=pad_id,
            )
        completion = text_tokenizer.decode(output[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
        replies.append(restore_prefilled_think(completion, GENERATION_PREFILL))
    return replies
