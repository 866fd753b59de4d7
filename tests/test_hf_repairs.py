"""Hardware fallbacks, offline guards and trainer wiring for HF/TRL notebooks (adapters/recipes/hf_repairs.py).

Each repair is checked on the shapes real TRL notebooks use (QLoRA configs handed to the trainer,
``model_init_kwargs`` dicts, vLLM serving cells, GPU memory reports), for what it changes, that the result
still parses, that a second pass changes nothing, and that the CPU branch is what runs without CUDA.
"""

from __future__ import annotations

import pytest

from adapters.recipes import hf_repairs as hr
from adapters.recipes.source_edits import parse


def _run(repair, source):
    assert repair.applies(source, source), f"{repair.name} should apply"
    fixed = repair.apply(source, source)
    assert parse(fixed) is not None, fixed  # parses (magic lines blanked, as the repairs see them)
    assert not repair.applies(fixed, fixed), f"{repair.name} applies twice"
    return fixed


def _eval_cpu(expression_source, name, **extra):
    namespace = {"DSA_HAS_CUDA": False, "DSA_HAS_BF16": False, **extra}
    exec(expression_source, namespace)
    return namespace[name]


def test_bnb_config_is_none_without_cuda():
    source = "q = BitsAndBytesConfig(\n    load_in_4bit=True,  # 4-bit\n    bnb_4bit_compute_dtype=torch.float16,\n)"
    fixed = _run(hr.QUANTIZATION_FALLBACK, source)
    assert fixed.startswith("q = (BitsAndBytesConfig(") and fixed.endswith(") if DSA_HAS_CUDA else None)")
    assert _eval_cpu(fixed, "q", BitsAndBytesConfig=lambda **k: 1 / 0, torch=None) is None


def test_inline_bnb_and_load_in_4bit_keyword():
    source = 'm = load(model_id, quantization_config=BitsAndBytesConfig(load_in_4bit=True), load_in_8bit=True)'
    fixed = _run(hr.QUANTIZATION_FALLBACK, source)
    assert "quantization_config=(BitsAndBytesConfig(load_in_4bit=True) if DSA_HAS_CUDA else None)" in fixed
    assert "load_in_8bit=DSA_HAS_CUDA" in fixed


def test_half_dtypes_in_dict_and_keywords():
    source = (
        'args = SFTConfig(model_init_kwargs={"dtype": "float16", "attn_implementation": "sdpa"})\n'
        "m = AutoModel.from_pretrained(x, torch_dtype=torch.bfloat16)  # comment with → arrow\n"
    )
    fixed = _run(hr.HALF_DTYPE_FALLBACK, source)
    assert '"dtype": ("float16" if DSA_HAS_CUDA else "float32")' in fixed
    assert "torch_dtype=(torch.bfloat16 if DSA_HAS_BF16 else torch.float32)" in fixed
    assert '"attn_implementation": "sdpa"' in fixed


def test_float32_and_auto_are_left_alone():
    source = 'm = AutoModel.from_pretrained(x, dtype="auto")\nargs = GRPOConfig(model_init_kwargs={"dtype": "float32"})'
    assert not hr.HALF_DTYPE_FALLBACK.applies(source, source)


def test_training_flags_optim_and_attention():
    source = (
        "args = SFTConfig(\n    bf16=True,\n    use_liger_kernel=True,  # Liger\n    activation_offloading=True,\n"
        '    optim = "paged_adamw_8bit",\n    model_init_kwargs={"attn_implementation": "kernels-community/vllm-flash-attn3"},\n)'
    )
    fixed = _run(hr.TRAINING_FLAGS_FALLBACK, source)
    assert "bf16=DSA_HAS_BF16" in fixed and "use_liger_kernel=DSA_HAS_CUDA" in fixed
    assert "activation_offloading=DSA_HAS_CUDA" in fixed
    fixed = _run(hr.OPTIM_FALLBACK, fixed)
    assert 'optim = ("paged_adamw_8bit" if DSA_HAS_CUDA else "adamw_torch")' in fixed
    fixed = _run(hr.ATTENTION_FALLBACK, fixed)
    assert '("kernels-community/vllm-flash-attn3" if DSA_HAS_CUDA else None)' in fixed


def test_trl_config_without_bf16_gets_the_flag():
    source = "training_args = GRPOConfig(\n    output_dir='x',\n)"
    fixed = _run(hr.TRL_BF16_DEFAULT_FALLBACK, source)
    assert "bf16=DSA_HAS_BF16" in fixed
    one_line = "args = SFTConfig(output_dir='x', max_steps=3)"
    assert _run(hr.TRL_BF16_DEFAULT_FALLBACK, one_line) == "args = SFTConfig(bf16=DSA_HAS_BF16, output_dir='x', max_steps=3)"
    assert not hr.TRL_BF16_DEFAULT_FALLBACK.applies("args = SFTConfig(fp16=True)", "")
    assert not hr.TRL_BF16_DEFAULT_FALLBACK.applies("args = SFTConfig(**kwargs)", "")


@pytest.mark.parametrize("has_cuda", [False, True])
def test_trl_gradient_checkpointing_is_off_without_cuda_in_the_real_config(has_cuda, tmp_path):
    # TRL's own SFTConfig built from the repaired source: off without CUDA, TRL's default (True) with it.
    from trl import SFTConfig

    source = f"args = SFTConfig(\n    output_dir={str(tmp_path)!r},\n    bf16=False,\n    report_to='none',\n)"
    fixed = _run(hr.TRL_CPU_SETTINGS_FALLBACK, source)
    assert "gradient_checkpointing=DSA_HAS_CUDA" in fixed
    namespace = {"DSA_HAS_CUDA": has_cuda, "SFTConfig": SFTConfig}
    exec(fixed, namespace)
    assert namespace["args"].gradient_checkpointing is has_cuda
    assert SFTConfig(output_dir=str(tmp_path), bf16=False, report_to="none").gradient_checkpointing is True


def test_trl_cpu_settings_cover_author_flags_and_leave_the_rest():
    assert _run(hr.TRL_CPU_SETTINGS_FALLBACK, "a = GRPOConfig(gradient_checkpointing=True, x=1)") == (
        "a = GRPOConfig(gradient_checkpointing=DSA_HAS_CUDA, x=1)")
    assert _run(hr.TRL_CPU_SETTINGS_FALLBACK, "a = TrainingArguments(gradient_checkpointing=True)") == (
        "a = TrainingArguments(gradient_checkpointing=DSA_HAS_CUDA)")
    assert _run(hr.TRL_CPU_SETTINGS_FALLBACK, "a = SFTConfig(activation_checkpointing=True)") == (
        "a = SFTConfig(activation_checkpointing=DSA_HAS_CUDA)")  # transformers' new name for it
    for kept in ("a = SFTConfig(**kwargs)", "a = SFTConfig(gradient_checkpointing=False)",
                 "a = SFTConfig(activation_checkpointing=False)",
                 "a = TrainingArguments(x=1)",  # transformers' default is already off
                 "a = SFTConfig(gradient_checkpointing=True if DSA_HAS_CUDA else False)"):
        assert not hr.TRL_CPU_SETTINGS_FALLBACK.applies(kept, kept), kept
    assert hr.TRL_CPU_SETTINGS_FALLBACK in hr.HARDWARE_FALLBACKS


def test_cuda_device_literal():
    fixed = _run(hr.CUDA_DEVICE_FALLBACK, 'm = load(x, device_map="cuda")\ny = t.to("cuda:0")\nz = load(x, device_map="auto")')
    assert 'device_map=("cuda" if DSA_HAS_CUDA else "cpu")' in fixed
    assert 't.to(("cuda:0" if DSA_HAS_CUDA else "cpu"))' in fixed
    assert 'device_map="auto"' in fixed


def test_gpu_memory_cell_guarded():
    source = "gpu_stats = torch.cuda.get_device_properties(0)\nprint(f\"GPU = {gpu_stats.name}\")"
    fixed = _run(hr.GPU_MEMORY_FALLBACK, source)
    assert fixed.startswith("if DSA_HAS_CUDA:")
    printed = []
    _eval_cpu(fixed, "DSA_HAS_CUDA", print=printed.append, torch=None)
    assert printed == ["no CUDA device: GPU memory report skipped"]


@pytest.mark.parametrize("generation", [True, False])
def test_vllm_cells_fall_back_to_kit_inference(generation):
    if generation:
        source = "outputs = llm.generate({'prompt': p}, sampling_params=SamplingParams(max_tokens=8))\nprint(outputs)"
    else:
        source = "from vllm import LLM, SamplingParams\nllm = LLM(model='m', dtype=torch.float16)"
    fixed = _run(hr.VLLM_FALLBACK, source)
    assert fixed.startswith("if DSA_HAS_CUDA:")
    assert ("dsa_generate(" in fixed) is generation
    # the half dtype under the guard is left as written
    assert not hr.HALF_DTYPE_FALLBACK.applies(fixed, fixed)


def test_push_guards_and_report_to():
    source = "trainer.save_model(out)\ntrainer.push_to_hub(dataset_name=dataset_name)\nargs = SFTConfig(push_to_hub=True, report_to=\"trackio\")"
    fixed = _run(hr.PUSH_CALLS_GUARD, source)
    assert "if dsa_can_push():  # DSA kit: needs a token and the hub\n    trainer.push_to_hub(dataset_name=dataset_name)" in fixed
    fixed = _run(hr.PUSH_FLAG_GUARD, fixed)
    fixed = _run(hr.REPORT_TO_GUARD, fixed)
    assert 'SFTConfig(push_to_hub=dsa_can_push(), report_to=dsa_report_to("trackio"))' in fixed
    assert not hr.REPORT_TO_GUARD.applies('SFTConfig(report_to="none")', "")


def test_owner_hub_ids_read_local_folders_first():
    source = 'adapter = f"someone/{output_dir}"\nmodel.push_to_hub(f"someone/{output_dir}-merged")\nx = f"{a}/{b}"'
    fixed = _run(hr.LOCAL_FIRST_REPAIR, source)
    assert 'adapter = dsa_local_first(f"someone/{output_dir}")' in fixed
    assert 'push_to_hub(f"someone/{output_dir}-merged")' in fixed
    assert 'x = f"{a}/{b}"' in fixed


def test_trainer_wiring():
    source = (
        "trainer = GRPOTrainer(\n    model=model_id,\n    reward_funcs=[think_format_reward, acc],\n"
        "    train_dataset=ds['train'],\n    eval_dataset=ds['test'],  # eval\n    peft_config=peft_config,\n)"
    )
    fixed = _run(hr.TRAINER_REWARDS_REPAIR, source)
    fixed = _run(hr.trainer_dataset_repair("dsa_grpo_dataset", "prompts"), fixed)
    fixed = _run(hr.TRAINER_EVAL_DATASET_REPAIR, fixed)
    assert fixed == (
        "trainer = GRPOTrainer(\n    model=model_id,\n    reward_funcs=DSA_REWARD_FUNCS,\n"
        "    train_dataset=dsa_grpo_dataset,\n    peft_config=peft_config,\n)"
    )
    inline = "t = SFTTrainer(model=m, train_dataset=d, eval_dataset=e, args=a)"
    assert _run(hr.TRAINER_EVAL_DATASET_REPAIR, inline) == "t = SFTTrainer(model=m, train_dataset=d, args=a)"


def test_grpo_config_removed_keyword():
    source = "a = GRPOConfig(max_completion_length=64, max_prompt_length=128, logging_steps=1)"
    assert _run(hr.GRPO_CONFIG_KEYWORDS_REPAIR, source) == "a = GRPOConfig(max_completion_length=64, logging_steps=1)"


def test_model_tuple_names_the_replaced_model():
    source = '# choose one\nmodel_id, output_dir = "Qwen/Qwen2-7B-Instruct", "qwen-grpo"  # 9 GB\n# model_id, output_dir = "x/y", "z"'
    fixed = _run(hr.MODEL_TUPLE_REPAIR, source)
    assert 'model_id, output_dir = MODEL_ID, "qwen-grpo"  # 9 GB' in fixed
    assert "Qwen/Qwen2-7B-Instruct" in hr.MODEL_TUPLE_REPAIR.reason_for(source, source)


def test_magic_lines_do_not_block_parsing():
    source = "!nvidia-smi\nq = BitsAndBytesConfig(load_in_4bit=True)"
    fixed = _run(hr.QUANTIZATION_FALLBACK, source)
    assert fixed.startswith("!nvidia-smi\n")


def test_hardware_fallback_reasons_are_named():
    for repair in hr.HARDWARE_FALLBACKS:
        assert repair.reason.startswith("hardware fallback:"), repair.name
