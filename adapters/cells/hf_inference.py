# %%
# Inference: the training chat rendering, the reply pre-filled with <think>, greedy, and generation
# stops on <end_of_turn> (106) as well as <eos> (1): stopping on <eos> alone runs past the turn.
import torch

EOS_TOKENS = list(STOP_TOKEN_IDS)


def dsa_generate(prompts, max_new_tokens=None):
    """Prompt message lists -> whole replies (the pre-filled <think> put back)."""
    text_tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # a processor wraps the tokenizer
    replies = []
    for messages in prompts:
        text = render_prompt(messages, generation_prefill=GENERATION_PREFILL)
        encoded = text_tokenizer(text, add_special_tokens=False, return_tensors="pt").to(model.device)
        with torch.no_grad():
            output = model.generate(
                **encoded,
                max_new_tokens=max_new_tokens or MAX_NEW_TOKENS,
                do_sample=False,
                eos_token_id=EOS_TOKENS,
                pad_token_id=PAD_ID,
            )
        completion = text_tokenizer.decode(output[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
        replies.append(restore_prefilled_think(completion, GENERATION_PREFILL))
    return replies
