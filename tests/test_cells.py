"""The cells the patcher inserts, executed here against the kit (what the notebook runs is what runs here).

Each test builds a notebook-like namespace: the ``parameters`` cell, the inlined DSA core (exactly the
source the patcher emits), the DIPG tags cell, then the cell under test. Trainer libraries that are
not in this environment (Tunix, grain) are replaced by small recording fakes; the HF cells run on the
tiny offline Gemma-3 (skipped with a reason when ``models/tiny-gemma3`` is absent).
"""

from __future__ import annotations

import ast
import json
import sys
import types
from collections import namedtuple
from pathlib import Path

import pytest

from adapters import cells, chat, dsa_format, masking
from adapters.dataset import read_source

ROOT = Path(__file__).resolve().parents[1]
SMALL_DATASET = ROOT / "tests" / "fixtures" / "eval" / "dataset"  # train 2 / test 9 rows, pre-split


@pytest.fixture(scope="module")
def core_source() -> str:
    return cells.build_core_source()


def run_cell(name: str, ns: dict, names: dict | None = None, values: dict | None = None) -> dict:
    template = cells.render_cell(name, names=names, values=values)
    exec(compile(template.source, f"<cell {name}>", "exec"), ns)
    return ns


@pytest.fixture
def notebook(core_source, tmp_path, monkeypatch):
    """A fresh namespace after parameters + headless + core + tags (DATASET_ID: the small fixture)."""
    if not SMALL_DATASET.is_dir():
        pytest.skip(f"{SMALL_DATASET} is absent")
    monkeypatch.setenv("DSA_HEADLESS", "1")
    # A kernel runs cells in __main__'s namespace; dataclasses look their module up in sys.modules.
    module = types.ModuleType("dsa_notebook")
    monkeypatch.setitem(sys.modules, "dsa_notebook", module)
    ns: dict = module.__dict__
    run_cell("parameters", ns, values={"DATASET_ID": str(SMALL_DATASET), "OUTPUT_DIR": str(tmp_path / "out"),
                                       "NUM_EVAL_ROWS": 3, "MAX_SEQ_LENGTH": 2048})
    run_cell("headless", ns)
    exec(compile(core_source, "<cell dsa_core>", "exec"), ns)
    run_cell("dipg_tags", ns)
    return ns


# ------------------------------------------------------------------------------ cell files themselves


def test_every_cell_file_is_one_parsable_cell():
    names = cells.cell_names()
    assert {"parameters", "install", "headless", "dipg_tags", "dipg_data", "evaluate"} <= set(names)
    for name in names:
        template = cells.load_cell(name)
        assert template.source.strip()
        if template.cell_type == "code":  # colab_badge is markdown
            ast.parse(template.source)
    assert cells.load_cell("parameters").tags == ("parameters",)


def test_rename_identifiers_touches_names_only():
    source = 'x = tokenizer("tokenizer")  # tokenizer\ny = obj.tokenizer\n'
    out = cells.rename_identifiers(source, {"tokenizer": "tok"})
    assert out == 'x = tok("tokenizer")  # tokenizer\ny = obj.tokenizer\n'


def test_rename_identifiers_inside_f_string_fields():
    source = 'print(f"{len(dataset)} rows, dataset={dataset.num_rows}", "{dataset}")\n'
    out = cells.rename_identifiers(source, {"dataset": "train_dataset"})
    assert out == 'print(f"{len(train_dataset)} rows, dataset={train_dataset.num_rows}", "{dataset}")\n'


def test_set_assignments_keeps_comments_and_equal_values():
    source = 'A = "x"  # why\nB = 1\n'
    assert cells.set_assignments(source, {"A": "x"}) == source
    assert cells.set_assignments(source, {"A": "y", "B": 2}) == 'A = "y"  # why\nB = 2\n'
    with pytest.raises(Exception, match="C"):
        cells.set_assignments(source, {"C": 1})


# ------------------------------------------------------------------------------------ the DSA core


def test_core_inlines_every_core_module_without_relative_imports(core_source):
    tree = ast.parse(core_source)
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level > 0]
    for path in cells.core_module_paths():
        assert f"# ---- adapters/{path.stem}.py" in core_source
    assert core_source.count("from __future__ import annotations") == 1
    first = tree.body[0]  # the first statement, below the Colab title and the comment lines
    assert isinstance(first, ast.ImportFrom) and first.module == "__future__"
    assert core_source.splitlines()[first.lineno - 1] == "from __future__ import annotations"


def test_core_behaves_like_the_kit(notebook):
    ns = notebook
    assert ns["GEMMA_CHAT_TEMPLATE"] == chat.GEMMA_CHAT_TEMPLATE
    assert tuple(ns["STOP_TOKEN_IDS"]) == (106, 1)
    messages = [{"role": "user", "content": "<context>\nc\n</context>\n\n<question>\nq\n</question>"}]
    assert ns["render_prompt"](messages, "<think>\n") == chat.render_prompt(messages, "<think>\n")
    for reply in ("<think>a</think><proof>b</proof><answer>c</answer>", "<think>a</think><answer>c</answer>",
                  "<proof>b</proof><think>a</think><answer>c</answer>", "text", ""):
        assert ns["parse_strict"](reply).describe() == dsa_format.parse_strict(reply).describe()
    assert ns["restore_prefilled_think"]("x</think>") == dsa_format.restore_prefilled_think("x</think>")


def test_core_masks_like_the_kit(notebook, tokenizer):
    rows = read_source(SMALL_DATASET)["train"]
    mine = notebook["mask_conversation"](rows[0], tokenizer, 2048)
    kit = masking.mask_conversation(rows[0], tokenizer, 2048)
    assert mine.input_ids == kit.input_ids and mine.loss_mask == kit.loss_mask


# --------------------------------------------------------------------------------- generic cells


def test_parameters_cell_values():
    ns: dict = {}
    run_cell("parameters", ns, values={"MODEL_ID": "models/tiny-gemma3"})
    assert ns["MODEL_ID"] == "models/tiny-gemma3"
    assert ns["MAX_SEQ_LENGTH"] >= 1024 and ns["MAX_PROMPT_LENGTH"] >= 1024  # haystack prompts fit


def test_install_cell_skips_importable_and_installs_missing(monkeypatch):
    import subprocess

    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, check: calls.append((cmd, check)))
    run_cell("install", {}, values={"_DSA_PACKAGES": {"json": "json-spec"}})
    assert calls == []
    run_cell("install", {}, values={"_DSA_PACKAGES": {"no_such_module_xyz": "openenv-dipg-safety==0.1.67"}})
    (cmd, check), = calls
    assert check is True and "--no-deps" in cmd and cmd[-1] == "openenv-dipg-safety==0.1.67"


def test_headless_helpers(monkeypatch):
    import subprocess

    monkeypatch.setenv("DSA_HEADLESS", "1")
    monkeypatch.setenv("DSA_INPUT", "kaggle")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, check: calls.append((cmd, check)))
    ns = run_cell("headless", {})
    assert ns["HEADLESS"] is True
    assert ns["dsa_input"]("source? ") == "kaggle"
    assert ns["dsa_login"]("huggingface") is False
    ns["dsa_tensorboard"]("tensorboard --logdir x")  # no front end: a note, no magic
    ns["dsa_pip_install"]("-q numpy")
    assert calls == []
    ns["dsa_pip_install"]("-q surely-not-installed-xyz")
    assert calls and calls[0][1] is True and calls[0][0][-1] == "surely-not-installed-xyz"


def test_model_path_cell_keeps_a_local_folder(notebook, tmp_path):
    notebook["MODEL_ID"] = str(tmp_path)
    run_cell("model_path", notebook)
    assert notebook["local_model_path"] == str(tmp_path)


def test_data_cell_reads_the_split(notebook):
    run_cell("dipg_data", notebook)
    splits = read_source(SMALL_DATASET)
    assert notebook["dsa_train_rows"] == splits["train"] and notebook["dsa_test_rows"] == splits["test"]
    assert len(notebook["dsa_eval_rows"]) == 3


def test_data_cell_upstream_split(notebook, offline_jsonl):
    from adapters.dataset import load_rows, upstream_split

    notebook["DATASET_ID"] = str(offline_jsonl)
    run_cell("dipg_data", notebook)
    train, test = upstream_split(load_rows(offline_jsonl))
    assert notebook["dsa_train_rows"] == train and notebook["dsa_test_rows"] == test


def test_tags_cell_prompt_and_training_turns(notebook):
    row = read_source(SMALL_DATASET)["train"][0]
    assert notebook["dsa_prompt_messages"](row) == row["messages"][:1]
    assert notebook["dsa_training_messages"](row) == row["messages"]
    notebook["USE_SYSTEM_PROMPT"] = True
    assert notebook["dsa_prompt_messages"](row)[0]["role"] == "system"
    assert notebook["GENERATION_PREFILL"] == "<think>\n" and notebook["reasoning_start"] == "<think>"


# ------------------------------------------------------------------------------- TRL / Unsloth cells


def test_trl_sft_data_matches_the_masking_core(notebook, tokenizer):
    run_cell("dipg_data", notebook)
    notebook["tokenizer"] = tokenizer
    run_cell("trl_sft_data", notebook)
    examples, dropped = masking.mask_batch(notebook["dsa_train_rows"], tokenizer, 2048)
    assert not dropped
    assert list(notebook["dataset"]) == [masking.to_trl_tokenized(e) for _, e in examples]


def test_trl_grpo_data_and_rewards(notebook, tokenizer):
    run_cell("dipg_data", notebook)
    notebook["tokenizer"] = tokenizer
    run_cell("trl_grpo_data", notebook, names={"dataset": "train_dataset"})
    rows = list(notebook["train_dataset"])
    assert len(rows) == len(notebook["dsa_train_rows"])
    gold = notebook["dsa_train_rows"][0]["messages"][1]["content"]
    assert rows[0]["answer"] == gold and rows[0]["prompt"] == notebook["dsa_train_rows"][0]["messages"][:1]
    notebook["MAX_PROMPT_LENGTH"] = 5  # every prompt is longer: all dropped, none cut
    run_cell("trl_grpo_data", notebook)
    assert len(notebook["dataset"]) == 0
    run_cell("trl_rewards", notebook)
    strict, partial, gym = notebook["DSA_REWARD_FUNCS"]
    completions = [[{"role": "assistant", "content": gold}], [{"role": "assistant", "content": "no tags"}]]
    columns = {k: [r[k]] * 2 for k in ("answer", "context", "question") for r in rows[:1]}
    prompts = [rows[0]["prompt"]] * 2
    assert strict(prompts=prompts, completions=completions, **columns) == [1.0, 0.0]
    assert partial(prompts=prompts, completions=completions, **columns)[0] == 1.0
    rewards = gym(prompts=prompts, completions=completions, **columns)
    assert rewards[0] > rewards[1] and abs(rewards[0]) <= 1.0  # scaled by GYM_REWARD_SCALE


def test_hf_inference_stops_on_106_and_restores_think(notebook, tokenizer, tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    seen = {}
    original = model.generate

    def recording_generate(**kwargs):
        seen.update(kwargs)
        return original(**kwargs)

    model.generate = recording_generate
    torch.manual_seed(0)
    notebook.update(model=model, tokenizer=tokenizer)
    run_cell("hf_inference", notebook)
    row = read_source(SMALL_DATASET)["test"][0]
    (reply,) = notebook["dsa_generate"]([notebook["dsa_prompt_messages"](row)], max_new_tokens=3)
    assert reply.startswith("<think>\n")
    assert seen["eos_token_id"] == [106, 1] and seen["do_sample"] is False
    ids = seen["input_ids"][0].tolist()
    assert ids.count(2) == 1 and ids[0] == 2  # exactly one <bos>
    assert tokenizer.decode(ids).endswith("<start_of_turn>model\n<think>\n")


def test_evaluation_cells_score_replies(notebook, tmp_path):
    pytest.importorskip("med_safety_eval")
    run_cell("dipg_data", notebook)
    golds = {r["messages"][0]["content"]: r["messages"][1]["content"] for r in notebook["dsa_test_rows"]}
    notebook["dsa_generate"] = lambda prompts, max_new_tokens=None: [golds[p[-1]["content"]] for p in prompts]
    run_cell("evaluate", notebook, values={"_DSA_EVAL_LABEL": "after SFT"})
    results = notebook["DSA_EVAL_RESULTS"]
    assert results["after SFT"] == results["gold"]  # gold replies in, gold figures out
    assert results["gold"]["strict_format"] == 1.0 and results["gold"]["rows"] == 3
    saved = json.loads((tmp_path / "out" / "eval_after_SFT.json").read_text())
    assert saved["summary"] == results["after SFT"]
    notebook["dsa_generate"] = lambda prompts, max_new_tokens=None: ["no tags at all"] * len(prompts)
    run_cell("evaluate_rerun", notebook)
    after = results["after GRPO"]
    assert after["strict_format"] == 0.0 and after["failure_kinds"] == {"missing_tag": 3}
    asked = []
    notebook["dsa_generate"] = lambda prompts, max_new_tokens=None: asked.extend(prompts) or ["x"] * len(prompts)
    for rows in (3, 1):  # the samples are the first (at most 3) evaluated rows: no extra generation
        asked.clear()
        notebook["dsa_eval_rows"] = notebook["dsa_test_rows"][:rows]
        run_cell("sample_questions", notebook)
        assert asked == [notebook["dsa_prompt_messages"](r) for r in notebook["dsa_test_rows"][: min(rows, 3)]]


# ------------------------------------------------------------------------------------ Tunix cells


class _FakeSampler:
    def __init__(self, transformer, tokenizer, cache_config):
        self.calls = []
        self.cache_config = cache_config

    def __call__(self, input_strings, max_generation_steps, max_prompt_length, eos_tokens, echo):
        # google-tunix's Sampler.__call__ takes these keywords (eos_tokens: ids to stop on).
        self.calls.append({"input_strings": input_strings, "eos_tokens": eos_tokens, "steps": max_generation_steps,
                           "max_prompt_length": max_prompt_length, "cache": self.cache_config})
        return types.SimpleNamespace(text=["x\n</think>\n\n<proof>\np\n</proof>\n\n<answer>\na\n</answer>"] * len(input_strings))


@pytest.fixture
def fake_tunix(monkeypatch):
    sampler_mod = types.ModuleType("tunix.generate.sampler")
    sampler_mod.Sampler = _FakeSampler
    sampler_mod.CacheConfig = lambda **kw: kw
    for name, module in {
        "tunix": types.ModuleType("tunix"),
        "tunix.generate": types.ModuleType("tunix.generate"),
        "tunix.generate.sampler": sampler_mod,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    sys.modules["tunix.generate"].sampler = sampler_mod
    grain = types.ModuleType("grain")

    class MapDataset(list):
        @classmethod
        def source(cls, records):
            return cls(records)

        def shuffle(self, seed):
            return self

        def batch(self, size):
            return [self[i : i + size] for i in range(0, len(self), size)]

    grain.MapDataset = MapDataset
    monkeypatch.setitem(sys.modules, "grain", grain)


def test_tunix_inference_prompt_and_stops(notebook, fake_tunix):
    config = types.SimpleNamespace(num_layers=2, num_kv_heads=1, head_dim=8)
    notebook.update(lora_policy=object(), tokenizer=object(), model_config=config)
    run_cell("tunix_inference", notebook, names={"gemma3": "lora_policy"})
    row = read_source(SMALL_DATASET)["test"][0]
    (reply,) = notebook["dsa_generate"]([notebook["dsa_prompt_messages"](row)])
    call = notebook["sampler"].calls[0]
    assert call["eos_tokens"] == [106, 1]
    # prompt budget + generation fit the KV cache exactly (Tunix raises when they exceed it)
    assert call["max_prompt_length"] + call["steps"] <= call["cache"]["cache_size"]
    text = call["input_strings"][0]
    assert not text.startswith("<bos>")  # Tunix adds its own
    assert text.endswith("<start_of_turn>model\n<think>\n")
    assert dsa_format.parse_strict(reply).ok  # the pre-filled <think> is put back


def test_tunix_sft_inputs_match_the_masking_core(notebook, tokenizer, tiny_model_dir):
    run_cell("dipg_data", notebook)
    TrainingInput = namedtuple("TrainingInput", "input_tokens input_mask")
    notebook.update(local_model_path=str(tiny_model_dir), BATCH_SIZE=2, TrainingInput=TrainingInput, MAX_SEQ_LENGTH=512)
    run_cell("tunix_sft_inputs", notebook)
    (batch,) = notebook["train_data"]
    examples, _ = masking.mask_batch(notebook["dsa_train_rows"], tokenizer, 512)
    for row_tokens, row_mask, (_, example) in zip(batch.input_tokens, batch.input_mask, examples):
        # Tunix trains input_tokens[1:] where input_mask[1:]: exactly the reply and its <end_of_turn>
        assert masking.tunix_trained_targets(row_tokens, row_mask) == example.trained_ids()
        assert example.trained_ids()[-1] == 106


def test_tunix_sft_inputs_reuse_the_base_tokenizer_of_the_same_folder(notebook, tiny_model_dir, monkeypatch):
    import transformers

    run_cell("dipg_data", notebook)
    base = transformers.AutoTokenizer.from_pretrained(str(tiny_model_dir))
    base_template = base.chat_template
    TrainingInput = namedtuple("TrainingInput", "input_tokens input_mask")
    notebook.update(local_model_path=str(tiny_model_dir), BATCH_SIZE=2, TrainingInput=TrainingInput,
                    MAX_SEQ_LENGTH=512, tokenizer=base)

    def no_second_load(*_args, **_kwargs):
        raise AssertionError("the base's tokenizer of the same folder must be reused, not loaded again")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", no_second_load)
    run_cell("tunix_sft_inputs", notebook)
    assert notebook["dsa_hf_tokenizer"] is not base and base.chat_template == base_template
    (batch,) = notebook["train_data"]
    examples, _ = masking.mask_batch(notebook["dsa_train_rows"], notebook["dsa_hf_tokenizer"], 512)
    for row_tokens, row_mask, (_, example) in zip(batch.input_tokens, batch.input_mask, examples):
        assert masking.tunix_trained_targets(row_tokens, row_mask) == example.trained_ids()
    # Not reused: Tunix's TokenizerAdapter, which delegates every attribute to the HF tokenizer it wraps (a
    # copy of it recurses), or anything that is not an HF tokenizer.
    class Delegating:
        def __init__(self, wrapped):
            self._tokenizer = wrapped

        def __getattr__(self, name):
            return getattr(self._tokenizer, name)

    for other in (Delegating(base), object()):
        notebook.update(tokenizer=other)
        with pytest.raises(AssertionError, match="must be reused"):
            run_cell("tunix_sft_inputs", notebook)


def test_tunix_grpo_data_and_rewards(notebook, tokenizer, fake_tunix):
    run_cell("dipg_data", notebook)
    notebook.update(BATCH_SIZE=1, tokenizer=tokenizer)
    run_cell("tunix_grpo_data", notebook)
    batches = notebook["dataset"]
    assert len(batches) == len(notebook["dsa_train_rows"])
    record = batches[0][0]
    assert record["prompts"].endswith("<start_of_turn>model\n<think>\n") and not record["prompts"].startswith("<bos>")
    assert record["answer"] == notebook["dsa_train_rows"][0]["messages"][1]["content"]
    run_cell("tunix_rewards", notebook)
    strict = notebook["DSA_REWARD_FNS"][0]
    inside = record["answer"][len("<think>\n"):]  # what a model writes after the pre-filled tag
    assert strict(prompts=[record["prompts"]], completions=[inside], answer=[record["answer"]]) == [1.0]
