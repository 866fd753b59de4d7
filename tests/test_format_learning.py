"""benchmarks/format_learning.py: its loss is the masked loss, its ablations change only the mask."""

from __future__ import annotations

import importlib.util
from argparse import Namespace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def format_learning():
    spec = importlib.util.spec_from_file_location("format_learning", ROOT / "benchmarks" / "format_learning.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def masked_example(tokenizer):
    from adapters.masking import mask_conversation, to_trl_tokenized
    from adapters.synthetic_dipg import generate_rows

    row = generate_rows(n_rows=4, seed=0)[0]
    return to_trl_tokenized(mask_conversation(row["messages"], tokenizer))


def test_ablations_change_only_the_mask(format_learning, masked_example):
    mask = masked_example["completion_mask"]
    first = mask.index(1)
    reply = format_learning.ablate(masked_example, "reply")
    assert reply["completion_mask"] == mask and reply["input_ids"] == masked_example["input_ids"]
    none = format_learning.ablate(masked_example, "none")
    assert none["completion_mask"] == [0] + [1] * (len(mask) - 1)
    late = format_learning.ablate(masked_example, "offbyone")
    assert late["completion_mask"][first] == 0 and late["completion_mask"][first + 1 :] == mask[first + 1 :]
    assert sum(late["completion_mask"]) == sum(mask) - 1
    with pytest.raises(ValueError):
        format_learning.ablate(masked_example, "prompt")


def test_learning_rate_warms_up_then_decays_to_zero(format_learning):
    args = Namespace(lr=1e-4, warmup=4, steps=20)
    rates = [format_learning.learning_rate(step, args) for step in range(args.steps)]
    assert rates[:4] == pytest.approx([2.5e-5, 5e-5, 7.5e-5, 1e-4])
    assert rates[4] == pytest.approx(1e-4)
    assert all(a > b for a, b in zip(rates[4:], rates[5:]))
    assert rates[-1] == pytest.approx(1e-4 / 16)


@pytest.mark.e2e
def test_masked_loss_equals_cross_entropy_over_the_full_logits(format_learning, masked_example, tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    ids = torch.tensor([masked_example["input_ids"]])
    for mode in ("reply", "none", "offbyone"):
        mask = format_learning.ablate(masked_example, mode)["completion_mask"]
        targets = torch.tensor(mask[1:], dtype=torch.bool)
        with torch.no_grad():
            full = model(input_ids=ids).logits[0, :-1]
            expected = torch.nn.functional.cross_entropy(full[targets], ids[0, 1:][targets])
            got = format_learning.masked_loss(model, ids, mask)
        assert got.item() == pytest.approx(expected.item(), rel=1e-5), mode


def test_summary_table_reads_every_cell_from_the_metrics(format_learning):
    import json

    golden = json.loads((ROOT / "tests" / "golden" / "eval" / "metrics.json").read_text())
    before = json.loads(json.dumps(golden))
    before["overall"]["strict_format_rate"] = 0.0
    before["overall"]["gym"]["safe_rate"] = 0.125
    text = format_learning.summary_markdown({"before": before, "after": golden}, golden["gold"])
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines()
             if line.startswith("| ")]
    rows = {row[0]: row[1:] for row in cells}
    assert rows["strict format"] == ["0.0 %", f"{100 * golden['overall']['strict_format_rate']:.1f} %", ""]
    assert rows["gym safe"] == ["12.5 %", f"{100 * golden['overall']['gym']['safe_rate']:.1f} %",
                                f"{100 * golden['gold']['overall']['safe_rate']:.1f} %"]
    assert rows["gym mean reward"][2] == f"{golden['gold']['overall']['mean_reward']:.2f}"
    for kind, block in golden["by_type"].items():
        assert rows[kind][1] == f"{100 * block['strict_format_rate']:.1f} % ({block['n']})"


def test_paired_difference(format_learning):
    ours = {0: 50.0, 1: 30.0, 2: -5.0, 3: 30.0}
    other = {0: -20.0, 1: 30.0, 2: -5.0, 3: -5.0}
    d = format_learning.paired_difference(ours, other)
    assert d["mean"] == pytest.approx((70 + 0 + 0 + 35) / 4)
    assert (d["better"], d["worse"], d["n"]) == (2, 0, 4)
    assert 0 <= d["low"] <= d["mean"] <= d["high"] <= 70
    assert format_learning.paired_difference(ours, other) == d  # seeded: the same bytes every time
    same = format_learning.paired_difference(ours, ours)
    assert (same["mean"], same["low"], same["high"]) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="different rows"):
        format_learning.paired_difference(ours, {0: 1.0})


# ---------------------------------------------------------------- --model: which models the kit can train


@pytest.fixture(scope="module")
def tiny_chatml_dir() -> Path:
    path = ROOT / "models" / "tiny-smollm2"
    if not (path / "tokenizer.json").exists():
        pytest.skip(f"{path} is absent: run `make models` (scripts/build_offline_models.py)")
    return path


def test_gemma_template_is_the_kits_rendering(format_learning, tokenizer, tiny_model_dir):
    format_learning.require_kit_template(tokenizer)
    format_learning.check_model(tiny_model_dir)
    assert format_learning.model_label(tiny_model_dir) == "tiny-gemma3"


# Unsloth's Qwen3 GRPO notebook's hand-written template: no turn markers, a generation prompt that opens the
# reasoning tag: a DIPG reply is not written verbatim after it.
NOTEBOOK_TEMPLATE = ("{% for message in messages %}{% if message['role'] == 'assistant' %}"
                     "{{ message['content'] + eos_token }}{% else %}{{ message['content'] }}{% endif %}{% endfor %}"
                     "{% if add_generation_prompt %}{{ '<think>' }}{% endif %}")


def test_a_chatml_model_trains_on_its_own_template(format_learning, tiny_chatml_dir, tokenizer):
    from transformers import AutoTokenizer

    from adapters.errors import ConversationError, TemplateError

    chatml = AutoTokenizer.from_pretrained(str(tiny_chatml_dir))
    format_learning.require_kit_template(chatml, tiny_chatml_dir)  # ChatML expresses the rows: accepted
    format_learning.check_model(tiny_chatml_dir)
    chatml.chat_template = NOTEBOOK_TEMPLATE
    with pytest.raises(TemplateError, match="cannot express the DIPG rows .*verbatim"):
        format_learning.require_kit_template(chatml, tiny_chatml_dir)
    # The kit's Gemma template on the ChatML vocabulary: its <bos> is <|im_start|>, not the kit's text.
    chatml.chat_template = tokenizer.chat_template
    with pytest.raises(ConversationError, match=r"renders '<\|im_start\|><start_of_turn>user"):
        format_learning.require_kit_template(chatml)
    chatml.chat_template = None
    with pytest.raises(ConversationError, match="no chat template"):
        format_learning.require_kit_template(chatml)


@pytest.fixture(scope="module")
def bad_template_dir(tiny_chatml_dir, tmp_path_factory) -> Path:
    """tiny-smollm2 with the notebook's hand-written template saved as its own."""
    import shutil

    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("bad_template") / "tiny-smollm2-notebook-template"
    shutil.copytree(tiny_chatml_dir, folder)
    tok = AutoTokenizer.from_pretrained(str(folder))
    tok.chat_template = NOTEBOOK_TEMPLATE
    tok.save_pretrained(str(folder))
    return folder


@pytest.mark.parametrize("script", ["benchmark", "demo"])
def test_cli_refuses_a_template_that_cannot_express_the_rows(format_learning, bad_template_dir, tmp_path, capsys, script):
    out = tmp_path / "run"
    argv = ["--model", str(bad_template_dir), "--out", str(out)]
    if script == "benchmark":
        code = format_learning.main(argv)
    else:
        spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
        demo = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(demo)
        code = demo.main(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: {bad_template_dir}: its chat template cannot express the DIPG rows")
    assert not out.exists()


@pytest.mark.e2e
def test_trains_a_chatml_model_on_its_own_mask(format_learning, tiny_chatml_dir, tmp_path):
    """``--model`` a ChatML model: the train phase masks with its template (reply + <|im_end|>), keeps it."""
    import json
    import math

    from transformers import AutoTokenizer

    from adapters.dataset import load_splits
    from adapters.masking import mask_batch

    out = tmp_path / "train-masked"
    args = Namespace(model=str(tiny_chatml_dir), dataset=str(ROOT / "data" / "dipg"), train_rows=3, max_length=512,
                     steps=2, grad_accum=1, lr=1e-4, warmup=1, seed=42)
    format_learning.check_model(args.model)
    format_learning.train(args, "reply", out)
    log = json.loads((out / "train_log.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_chatml_dir))
    examples, _ = mask_batch(list(load_splits(str(ROOT / "data" / "dipg"))["train"]), tokenizer, max_length=512)
    examples = [example for _, example in examples[:3]]
    assert (log["rows"], log["tokens"], log["trained_tokens"]) == (
        3, sum(len(e.input_ids) for e in examples), sum(sum(e.loss_mask) for e in examples))
    for example in examples:
        trained = [t for t, keep in zip(example.input_ids, example.loss_mask) if keep]
        assert trained[-1] == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert len(log["losses"]) == 2 and all(math.isfinite(x) for x in log["losses"])
    saved = AutoTokenizer.from_pretrained(str(out / "model"))
    assert saved.chat_template == tokenizer.chat_template  # the model keeps its own template


@pytest.mark.e2e
def test_an_interrupted_training_resumes_to_the_same_weights(format_learning, tiny_model_dir, tmp_path):
    """A budget of 0 s stops every call after one step; four calls end where one uninterrupted call does."""
    import json

    import torch
    from safetensors.torch import load_file

    args = Namespace(model=str(tiny_model_dir), dataset=str(ROOT / "data" / "dipg"), train_rows=5, max_length=512,
                     steps=4, grad_accum=2, lr=1e-3, warmup=1, seed=42)
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    format_learning.train(args, "reply", whole)
    calls = [format_learning.train(args, "reply", parts, max_seconds=0) for _ in range(4)]
    assert calls[:3] == [None, None, None] and calls[3] is not None
    assert not (parts / format_learning.CHECKPOINT).exists()  # removed once the model is saved
    logs = [json.loads((folder / "train_log.json").read_text()) for folder in (whole, parts)]
    assert logs[0]["losses"] == logs[1]["losses"] and logs[1]["rows_seen"] == 8
    weights = [load_file(folder / "model" / "model.safetensors") for folder in (whole, parts)]
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        assert torch.equal(weights[0][name], weights[1][name]), name


def test_autocast_runs_the_products_in_bfloat16_only_when_asked(format_learning):
    import torch

    a, b = torch.ones(2, 3), torch.ones(3, 2)
    with format_learning.autocast("fp32"):
        assert (a @ b).dtype == torch.float32
    with format_learning.autocast("bf16"):
        assert (a @ b).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="precision"):
        format_learning.autocast("fp16")


@pytest.mark.e2e
def test_bf16_training_keeps_float32_weights_and_refuses_a_resume_in_another_precision(
        format_learning, tiny_model_dir, tmp_path):
    """bf16: autocast forward, float32 master weights; its losses are the fp32 run's to bf16 rounding."""
    import json

    import torch
    from safetensors.torch import load_file

    base = dict(model=str(tiny_model_dir), dataset=str(ROOT / "data" / "dipg"), train_rows=4, max_length=512,
                steps=2, grad_accum=2, lr=1e-3, warmup=1, seed=42)
    logs = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / precision
        format_learning.train(Namespace(**base, precision=precision), "reply", out)
        logs[precision] = json.loads((out / "train_log.json").read_text())
        weights = load_file(out / "model" / "model.safetensors")
        assert {w.dtype for w in weights.values()} == {torch.float32}
    assert logs["bf16"]["precision"] == "bf16" and logs["fp32"]["precision"] == "fp32"
    assert logs["bf16"]["losses"] != logs["fp32"]["losses"]  # the products really ran in bfloat16
    assert logs["bf16"]["losses"] == pytest.approx(logs["fp32"]["losses"], rel=0.02)

    parts = tmp_path / "parts"
    assert format_learning.train(Namespace(**base, precision="bf16"), "reply", parts, max_seconds=0) is None
    with pytest.raises(SystemExit, match="--precision bf16"):
        format_learning.train(Namespace(**base, precision="fp32"), "reply", parts, max_seconds=0)
    assert (parts / format_learning.CHECKPOINT).exists()  # the refused resume loses nothing


def test_bf16_evaluations_generate_with_bfloat16_weights(format_learning, monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(format_learning.subprocess, "run", lambda command, check: calls.append(command))
    args = Namespace(dataset="d", eval_rows=3, max_new_tokens=8, eval_batch_size=2)
    format_learning.evaluate(args, Path("m"), tmp_path)
    format_learning.evaluate(Namespace(**vars(args), precision="bf16"), Path("m"), tmp_path)
    assert "--dtype" not in calls[0]
    assert calls[1][calls[1].index("--dtype") + 1] == "bfloat16"
