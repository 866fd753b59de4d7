# %%
# Tunix model config and tokenizer that follow MODEL_ID's folder. A preset (ModelConfig.gemma3_1b_it())
# is kept when the folder's config.json describes that model; another Gemma-3 checkpoint (270M, 4B, the
# offline tiny one) gets its config from config.json. Without bf16 hardware the weights load as float32.
import dataclasses
import json
import os

import jax.numpy as jnp


def dsa_tunix_model_config(preset, path):
    """``preset`` when ``path/config.json`` is that model, else a config of the same class built from it."""
    config_path = os.path.join(path, "config.json")
    if os.path.isfile(config_path):
        with open(config_path, encoding="utf-8") as stream:
            hf = json.load(stream)
        hf = hf.get("text_config", hf)
        rope = hf.get("rope_parameters") or {}
        dims = {
            "num_layers": hf["num_hidden_layers"],
            "num_embed": hf["vocab_size"],
            "embed_dim": hf["hidden_size"],
            "hidden_dim": hf["intermediate_size"],
            "num_heads": hf["num_attention_heads"],
            "head_dim": hf["head_dim"],
            "num_kv_heads": hf["num_key_value_heads"],
        }
        if any(getattr(preset, name) != value for name, value in dims.items()):
            print(f"model config from {config_path} (the notebook's preset describes another model)")
            preset = dataclasses.replace(
                preset,
                **dims,
                sliding_window_size=hf.get("sliding_window", preset.sliding_window_size),
                local_base_frequency=int(rope.get("sliding_attention", {}).get("rope_theta", hf.get("rope_local_base_freq", 10_000))),
                global_base_frequency=int(rope.get("full_attention", {}).get("rope_theta", hf.get("rope_theta", 1_000_000))),
            )
    if not DSA_HAS_BF16 and preset.param_dtype == jnp.bfloat16:
        preset = dataclasses.replace(preset, param_dtype=jnp.float32)  # hardware fallback: no bf16 here
    return preset


def dsa_tunix_tokenizer(path):
    """Tunix's Tokenizer over the folder's Hugging Face tokenizer: <bos> added, no <eos> appended.

    (Tunix's SentencePiece default appends <eos> to every encoded string, so every sampler and GRPO
    prompt would end in <eos>; it also needs tokenizer.model and sentencepiece < 0.2.2.)"""
    from tunix.generate import tokenizer_adapter

    return tokenizer_adapter.Tokenizer(tokenizer_type="huggingface", tokenizer_path=path, add_bos=True, add_eos=False)
