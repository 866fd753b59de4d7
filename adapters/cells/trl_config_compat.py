# %%
# TRL configs across versions and hardware. Without a GPU, Unsloth runs stock TRL, whose GRPOConfig (1.x) no
# longer takes some keywords Unsloth's notebooks pass (max_prompt_length, warmup_ratio, vllm_sampling_params).
# dsa_trl_config drops only what the installed version rejects (warmup_ratio becomes warmup_steps: a fraction
# below 1 is a ratio) and, without CUDA, makes the per-device batch a multiple of num_generations, as Unsloth's
# own config does on GPU. Where every keyword is accepted and CUDA is present, the config is built as written.
import inspect


def dsa_trl_config(config_class, **kwargs):
    """``config_class(**kwargs)``, less the keywords this TRL/transformers version no longer takes."""
    accepted = inspect.signature(config_class).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        dropped = {key: kwargs.pop(key) for key in list(kwargs) if key not in accepted}
        if "warmup_ratio" in dropped and "warmup_steps" in accepted and "warmup_steps" not in kwargs:
            kwargs["warmup_steps"] = dropped.pop("warmup_ratio")
            print(f"{config_class.__name__}: warmup_ratio -> warmup_steps={kwargs['warmup_steps']} (a fraction of the steps)")
        if dropped:
            print(f"{config_class.__name__} of this version has no {', '.join(sorted(dropped))}: dropped")
    generations = kwargs.get("num_generations")
    if generations and not DSA_HAS_CUDA:
        default = accepted["per_device_train_batch_size"].default if "per_device_train_batch_size" in accepted else 8
        batch = kwargs.get("per_device_train_batch_size", default)
        if (batch * kwargs.get("gradient_accumulation_steps", 1)) % generations:
            print(f"per_device_train_batch_size {batch} -> {generations}: the batch must hold whole groups of "
                  f"num_generations={generations} completions")
            kwargs["per_device_train_batch_size"] = generations
    return config_class(**kwargs)


# GRPO rollouts stop where the model's turn ends (Gemma: <end_of_turn> and <eos>; ChatML: <|im_end|>): TRL's
# GRPOTrainer reads its stop ids from model.generation_config when it is built, so they are set here, before it.
print("GRPO rollouts stop on:", describe_stops(tokenizer), "->", list(set_generation_stops(model, tokenizer)))
