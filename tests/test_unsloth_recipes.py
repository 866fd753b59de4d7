"""The Unsloth recipes on the shapes real Unsloth notebooks have (FIELD_NOTES §4c/§4d/§4f), and the kit cells
they insert. Small notebooks built here stand for one situation each: a GRPO-only notebook whose display
cells read `dataset`, a non-Gemma notebook with its own chat template and a format pre-fine-tune before GRPO
(vLLM, ``save_lora``, stock-TRL GRPOConfig keywords), and an SFT notebook's display and memory cells.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass

import nbformat
import pytest

from adapters import cells
from adapters.patcher import KIT_KEY, adapt, format_report
from adapters.recipes import unsloth_common as uc


def _nb(*sources: str):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(s[3:]) if s.startswith("md:") else nbformat.v4.new_code_cell(s)
                for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


INSTALL = '%%capture\nimport os\nif "COLAB_" not in "".join(os.environ.keys()):\n    !pip install unsloth vllm'
TAGS = ('reasoning_start = "<start_working_out>"\nreasoning_end = "<end_working_out>"\nsolution_start = "<SOLUTION>"\n'
        'solution_end = "</SOLUTION>"\nsystem_prompt = f"Place it between {reasoning_start} and {reasoning_end}."')
REWARDS = ('import re\nmatch_format = re.compile(rf"{reasoning_start}.+?{solution_start}(.+?){solution_end}")\n'
           'def match_format_exactly(completions, **kwargs):\n'
           '    return [3.0 if match_format.search(c[0]["content"]) else 0 for c in completions]')

QWEN_LIKE = _nb(
    INSTALL,
    'from unsloth import FastLanguageModel\nimport torch\nmax_seq_length = 2048\n'
    'model, tokenizer = FastLanguageModel.from_pretrained(\n    model_name = "unsloth/Qwen3-4B-Base",\n'
    '    max_seq_length = max_seq_length,\n    load_in_4bit = False,\n    fast_inference = True,\n'
    '    gpu_memory_utilization = 0.9,\n)',
    TAGS,
    "md:We create a simple chat template below.",
    'chat_template = "{{ messages[0][\'content\'] }}"\ntokenizer.chat_template = chat_template',
    'tokenizer.apply_chat_template([{"role": "user", "content": "What is 1+1?"}], tokenize = False)',
    'from datasets import load_dataset\nimport pandas as pd\ndataset = load_dataset("unsloth/OpenMathReasoning-mini", split = "cot").to_pandas()',
    'def format_dataset(x):\n    return [{"role": "system", "content": system_prompt},\n'
    '            {"role": "assistant", "content": reasoning_start + x["generated_solution"]}]\n'
    'dataset["Messages"] = dataset.apply(format_dataset, axis = 1)',
    'dataset["N"] = dataset["Messages"].apply(lambda x: len(tokenizer.apply_chat_template(x)))\n'
    'dataset = dataset.loc[dataset["N"] <= max_seq_length/2].copy()',
    'from datasets import Dataset\ndataset["text"] = tokenizer.apply_chat_template(dataset["Messages"].values.tolist(), tokenize = False)\n'
    'dataset = Dataset.from_pandas(dataset)',
    'from trl import SFTTrainer, SFTConfig\ntrainer = SFTTrainer(\n    model = model,\n    tokenizer = tokenizer,\n'
    '    train_dataset = dataset,\n    args = SFTConfig(num_train_epochs = 2, optim = "adamw_8bit", logging_steps = 5),\n)',
    "trainer.train()",
    'text = tokenizer.apply_chat_template(dataset[0]["Messages"][:2], tokenize = False, add_generation_prompt = True)\n'
    'from transformers import TextStreamer\n_ = model.generate(**tokenizer(text, return_tensors = "pt").to("cuda"))',
    'from datasets import load_dataset\ndataset = load_dataset("open-r1/DAPO-Math-17k-Processed", "en", split = "train")',
    'dataset[0]["solution"]',
    'dataset = dataset.map(lambda x: {"prompt": [{"role": "user", "content": x["prompt"]}], "answer": x["solution"]})',
    REWARDS,
    'match_format.findall("<start_working_out>Let me think!<end_working_out><SOLUTION>2</SOLUTION>")',
    'tokenized = dataset.map(lambda x: {"tokens": tokenizer.apply_chat_template(x["prompt"], tokenize = True)})\n'
    'import numpy as np\nmaximum_length = int(np.quantile([len(t) for t in tokenized["tokens"]], 0.9))',
    'max_prompt_length = maximum_length + 1\nfrom vllm import SamplingParams\n'
    'vllm_sampling_params = SamplingParams(min_p = 0.1, seed = 3407)\nfrom trl import GRPOConfig, GRPOTrainer\n'
    'training_args = GRPOConfig(\n    vllm_sampling_params = vllm_sampling_params,\n    warmup_ratio = 0.1,\n'
    '    per_device_train_batch_size = 1,\n    num_generations = 4,\n    max_prompt_length = max_prompt_length,\n'
    '    max_steps = 100,\n)',
    'trainer = GRPOTrainer(\n    model = model,\n    processing_class = tokenizer,\n    reward_funcs = [match_format_exactly],\n'
    '    args = training_args,\n    train_dataset = dataset,\n)\ntrainer.train()',
    'from vllm import SamplingParams\noutput = model.fast_generate(["What is the sqrt of 101?"], sampling_params = SamplingParams())',
    'model.save_lora("grpo_saved_lora")',
)


def _code(result) -> list[str]:
    return [c.source for c in result.nb.cells if c.cell_type == "code"]


def _kit_order(result) -> list[str]:
    return [c.metadata[KIT_KEY]["cell"] for c in result.nb.cells if KIT_KEY in c.metadata]


def test_non_gemma_grpo_with_format_pre_fine_tune():
    result = adapt(QWEN_LIKE)
    assert result.family == "unsloth-gemma3-grpo"
    code = "\n".join(_code(result))
    report = format_report(result)
    # The model stays the notebook's own (MODEL_ID's default); its hand-written math template goes, and the
    # template the run uses (ChatML for Qwen) is chosen and printed at run time; nothing of the base's format is left.
    assert "non-Gemma model unsloth/Qwen3-4B-Base -> MODEL_ID" in report
    assert "chat template: ChatML, stops <|im_end|>, <|endoftext|> (from MODEL_ID 'unsloth/Qwen3-4B-Base'" in report
    parameters = next(c.source for c in result.nb.cells if c.metadata.get(KIT_KEY, {}).get("cell") == "parameters")
    assert re.search(r'^MODEL_ID = "unsloth/Qwen3-4B-Base"', parameters, re.M)
    assert "<start_working_out>" not in code and "<SOLUTION>" not in code
    assert "tokenizer.chat_template = chat_template" not in code and "OpenMathReasoning" not in code
    order = _kit_order(result)
    assert order.index("chat_template_note") + 1 == order.index("chat_template_choice")
    assert "gemma_only_note" not in order
    # The format pre-fine-tune is the kit's masked DIPG SFT; its log comes right after the SFT .train().
    for before, after in (("dipg_tags", "dipg_data"), ("dipg_data", "trl_grpo_data"), ("trl_grpo_data", "trl_sft_data"),
                          ("trl_sft_data", "hf_trained_trainer"), ("hf_trained_trainer", "hf_train_log"),
                          ("hf_train_log", "sample_questions"), ("trl_config_compat", "grpo_log"), ("grpo_log", "evaluate"), ("sample_questions", "grpo_rows_again"),
                          ("grpo_rows_again", "grpo_prompt_budget"), ("grpo_prompt_budget", "trl_config_compat"),
                          ("trl_config_compat", "evaluate")):
        assert order.index(before) < order.index(after), (before, after, order)
    assert order.count("evaluate") == 1 and "evaluate_rerun" not in order
    sft = next(s for s in _code(result) if "SFTTrainer(" in s)
    assert "max_steps = MAX_STEPS" in sft and "train_dataset = dsa_sft_dataset" in sft
    grpo = next(s for s in _code(result) if "GRPOConfig, " in s and "training_args" in s)
    assert "dsa_trl_config(GRPOConfig, " in grpo and "max_steps = GRPO_MAX_STEPS" in grpo
    assert "if DSA_HAS_CUDA:  # vLLM needs CUDA\n    from vllm import SamplingParams" in grpo
    assert re.search(r"\) if DSA_HAS_CUDA else None", grpo)
    assert "fast_inference = True and DSA_HAS_CUDA" in code
    assert '(model.save_lora if DSA_HAS_CUDA else model.save_pretrained)("grpo_saved_lora")' in code
    assert 'dataset[0]["answer"]' in code  # the math column shown as its DIPG counterpart
    assert "fast_generate" not in code and "match_format" not in code
    assert "provides: maximum_length (kit cell grpo_prompt_budget" in report
    # Adapting the output again changes nothing.
    again = adapt(result.nb)
    assert _code(again) == _code(result)


@pytest.mark.parametrize("model_id, line", [
    ("google/gemma-3-1b-it", "Gemma, stops <end_of_turn>, <eos>"),
    ("HuggingFaceTB/SmolLM2-135M-Instruct", "ChatML, stops <|im_end|>"),
    ("meta-llama/Llama-3.2-1B-Instruct", "Llama-3, stops <|eot_id|>, <|end_of_text|>"),
    ("mistralai/Mistral-7B-Instruct-v0.3", "read from MODEL_ID 'mistralai/Mistral-7B-Instruct-v0.3'"),
])
def test_model_id_names_any_chat_model(model_id, line):
    """``--model-id`` wins over the notebook's own model; the report says the template and stops it implies."""
    result = adapt(QWEN_LIKE, model_id=model_id)
    parameters = next(c.source for c in result.nb.cells if c.metadata.get(KIT_KEY, {}).get("cell") == "parameters")
    assert f'MODEL_ID = "{model_id}"' in parameters
    assert f"chat template: {line}" in format_report(result)
    # A re-run keeps the parameters cell's MODEL_ID, not the notebook's model literal.
    assert f'MODEL_ID = "{model_id}"' in next(
        c.source for c in adapt(result.nb).nb.cells if c.metadata.get(KIT_KEY, {}).get("cell") == "parameters")


def test_grpo_only_display_cells_read_dipg_rows():
    nb = _nb(INSTALL,
             'from unsloth import FastModel\nmodel, tokenizer = FastModel.from_pretrained(model_name = "unsloth/gemma-3-1b-it", load_in_4bit = True)',
             'from datasets import load_dataset\ndataset = load_dataset("openai/gsm8k", "main", split = "train")',
             'dataset[0]["question"]', TAGS,
             'dataset = dataset.map(lambda x: {"prompt": [{"role": "user", "content": x["question"]}]})',
             REWARDS,
             'from trl import GRPOConfig, GRPOTrainer\ntraining_args = GRPOConfig(max_steps = 50, num_generations = 4)\n'
             'trainer = GRPOTrainer(model = model, reward_funcs = [match_format_exactly], args = training_args, train_dataset = dataset)\n'
             'trainer.train()',
             'from transformers import TextStreamer\n_ = model.generate(**tokenizer("hi", return_tensors = "pt").to("cuda"), streamer = TextStreamer(tokenizer))')
    result = adapt(nb)
    code = _code(result)
    assert 'dataset[0]["question"]' in code  # kept: trl_grpo_data defines `dataset` with a question column
    assert "provides: dataset (kit cell trl_grpo_data" in format_report(result)
    assert any("max_steps = MAX_STEPS" in s for s in code)  # GRPO is the only stage
    assert any("load_in_4bit = DSA_HAS_CUDA" in s for s in code)
    assert _kit_order(result)[-4:] == ["grpo_log", "hf_inference", "sample_questions", "evaluate"]
    assert "hf_train_log" not in _kit_order(result)  # GRPO only: no SFT losses to log


def test_sft_display_and_memory_cells():
    nb = _nb('%%capture\n!pip install unsloth',
             'from unsloth import FastModel\nimport torch\nmodel, tokenizer = FastModel.from_pretrained(model_name = "unsloth/gemma-3-270m-it")',
             'from unsloth.chat_templates import get_chat_template\ntokenizer = get_chat_template(tokenizer, chat_template = "gemma3")',
             'from datasets import load_dataset\ndataset = load_dataset("Thytu/ChessInstruct", split = "train[:10000]")',
             'def convert_to_chatml(example):\n    return {"conversations": [{"role": "user", "content": example["input"]}]}\n'
             'dataset = dataset.map(convert_to_chatml)',
             "dataset[100]",
             'def formatting_prompts_func(examples):\n    return {"text": [tokenizer.apply_chat_template(c, tokenize = False).removeprefix("<bos>") for c in examples["conversations"]]}\n'
             'dataset = dataset.map(formatting_prompts_func, batched = True)',
             'from trl import SFTTrainer, SFTConfig\ntrainer = SFTTrainer(model = model, tokenizer = tokenizer, train_dataset = dataset, args = SFTConfig(max_steps = 100))',
             'from unsloth.chat_templates import train_on_responses_only\ntrainer = train_on_responses_only(trainer)',
             'tokenizer.decode(trainer.train_dataset[100]["input_ids"])',
             "gpu_stats = torch.cuda.get_device_properties(0)\nprint(gpu_stats.name)",
             "trainer_stats = trainer.train()",
             'model.save_pretrained("gemma_3_lora")',
             'if False:\n    model, tokenizer = FastModel.from_pretrained(model_name = "gemma_3_lora")',
             'messages = [{"role": "user", "content": "Continue"}]\n_ = model.generate(**tokenizer("x", return_tensors = "pt"))')
    result = adapt(nb)
    code = _code(result)
    assert result.family == "unsloth-gemma3-sft"
    assert "dataset[min(100, len(dataset) - 1)]" in code
    assert 'tokenizer.decode(trainer.train_dataset[min(100, len(trainer.train_dataset) - 1)]["input_ids"])' in code
    assert any(s.startswith("if DSA_HAS_CUDA:") and "get_device_properties" in s for s in code)
    assert any('model_name = "gemma_3_lora"' in s for s in code)  # a reload of the saved adapter is left alone
    assert not any("convert_to_chatml" in s for s in code)
    order = _kit_order(result)
    assert order.index("unsloth_rows") < order.index("trl_sft_data") < order.index("hf_train_log") < order.index("evaluate")


# ----------------------------------------------------------------------------------------- kit cells


def _exec_cell(name: str, ns: dict, names: dict | None = None) -> dict:
    exec(compile(cells.render_cell(name, names=names).source, f"<cell {name}>", "exec"), ns)
    return ns


@dataclass
class _OldConfig:  # a config class of a TRL that no longer takes some keywords
    output_dir: str = "outputs"
    warmup_steps: float = 0
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    num_generations: int = 8


def _tokenizer_and_model(path: str):
    """A real tokenizer and a model stand-in that has what the cell touches: a real GenerationConfig."""
    from types import SimpleNamespace

    from transformers import AutoTokenizer, GenerationConfig

    from adapters.notebook_runs import ROOT

    tokenizer = AutoTokenizer.from_pretrained(ROOT / "models" / path)
    return tokenizer, SimpleNamespace(generation_config=GenerationConfig(eos_token_id=0, pad_token_id=0))


@pytest.mark.parametrize("path, stops", [("tiny-gemma3", [106, 1]), ("tiny-smollm2", [2])])
def test_trl_config_compat_cell_sets_grpo_stops(path, stops, capsys):
    """GRPO rollouts stop on the template's end of turn: the cell writes it into model.generation_config."""
    from adapters.chat_template import describe_stops, set_generation_stops

    tokenizer, model = _tokenizer_and_model(path)
    _exec_cell("trl_config_compat", {"DSA_HAS_CUDA": False, "describe_stops": describe_stops,
                                     "set_generation_stops": set_generation_stops, "tokenizer": tokenizer, "model": model})
    assert model.generation_config.eos_token_id == stops
    assert tokenizer.convert_ids_to_tokens(stops[0]) in capsys.readouterr().out


def test_trl_config_compat_cell(capsys):
    from adapters.chat_template import describe_stops, set_generation_stops

    tokenizer, model = _tokenizer_and_model("tiny-gemma3")
    ns = _exec_cell("trl_config_compat", {"DSA_HAS_CUDA": False, "describe_stops": describe_stops,
                                          "set_generation_stops": set_generation_stops, "tokenizer": tokenizer,
                                          "model": model})
    capsys.readouterr()
    config = ns["dsa_trl_config"](_OldConfig, warmup_ratio=0.1, max_prompt_length=256, vllm_sampling_params=None,
                                  per_device_train_batch_size=1, num_generations=2)
    assert (config.warmup_steps, config.per_device_train_batch_size, config.num_generations) == (0.1, 2, 2)
    printed = capsys.readouterr().out
    assert "max_prompt_length" in printed and "vllm_sampling_params" in printed and "warmup_ratio" in printed
    ns["DSA_HAS_CUDA"] = True  # on a GPU, Unsloth's own config adjusts the batch: built as written
    assert ns["dsa_trl_config"](_OldConfig, per_device_train_batch_size=1, num_generations=2).per_device_train_batch_size == 1
    assert "warmup_ratio" not in inspect.signature(_OldConfig).parameters


def test_trained_trainer_cell():
    class _State:
        def __init__(self, step):
            self.global_step = step

    class _Trainer:
        def __init__(self, step):
            self.state = _State(step)

        def train(self):
            return None

    sft, grpo = _Trainer(3), _Trainer(0)
    ns = _exec_cell("hf_trained_trainer", {"sft_trainer": sft, "model": object()})
    assert ns["trainer"] is sft  # a notebook that names its SFT trainer otherwise: the log cells read `trainer`
    other = _Trainer(5)
    ns = _exec_cell("hf_trained_trainer", {"other": other, "trainer": sft})
    assert ns["trainer"] is sft
    with pytest.raises(RuntimeError):
        _exec_cell("hf_trained_trainer", {"trainer": grpo})


def test_repairs_are_idempotent_and_leave_gpu_code_as_written():
    for repair, source in (
        (uc.FAST_INFERENCE_FALLBACK, "m = F.from_pretrained(fast_inference = True)"),
        (uc.SAVE_LORA_FALLBACK, 'model.save_lora("x")'),
        (uc.VLLM_SETUP_FALLBACK, "from vllm import SamplingParams\np = SamplingParams(top_k = -1)\nx = 1"),
        (uc.GRPO_CONFIG_COMPAT, "args = GRPOConfig(max_steps = 2)"),
        (uc.ROW_INDEX_REPAIR, "dataset[100]"),
    ):
        assert repair.applies(source, source), repair.name
        fixed = repair.apply(source, source)
        assert fixed != source and not repair.applies(fixed, fixed), repair.name
        compile(fixed, repair.name, "exec")
    assert not uc.ROW_INDEX_REPAIR.applies("x = dataset[100]", "")  # only display cells
