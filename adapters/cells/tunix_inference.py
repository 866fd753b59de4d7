# %%
# Inference with Tunix's sampler: the training chat rendering, the reply pre-filled with <think>, and
# generation stops on <end_of_turn> (106) as well as <eos> (1).
from tunix.generate import sampler as sampler_lib

EOS_TOKENS = list(STOP_TOKEN_IDS)
sampler = sampler_lib.Sampler(
    transformer=gemma3,
    tokenizer=tokenizer,
    cache_config=sampler_lib.CacheConfig(
        cache_size=MAX_PROMPT_LENGTH + MAX_NEW_TOKENS,
        num_layers=model_config.num_layers,
        num_kv_heads=model_config.num_kv_heads,
        head_dim=model_config.head_dim,
    ),
)


def dsa_generate(prompts, max_new_tokens=None):
    """Prompt message lists -> whole replies (the pre-filled <think> put back)."""
    # Tunix's tokenizer adds <bos> itself: drop the rendered one so the prompt has exactly one.
    texts = [render_prompt(messages, generation_prefill=GENERATION_PREFILL)[len(BOS) :] for messages in prompts]
    # A fixed prompt budget keeps prompt + generation within the cache (Tunix rounds an unset budget
    # up to a power of two, which a ~1k-token haystack prompt would push past it).
    output = sampler(
        input_strings=texts,
        max_generation_steps=max_new_tokens or MAX_NEW_TOKENS,
        max_prompt_length=MAX_PROMPT_LENGTH,
        eos_tokens=EOS_TOKENS,
        echo=False,
    )
    return [restore_prefilled_think(text, GENERATION_PREFILL) for text in output.text]
