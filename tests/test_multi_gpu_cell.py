"""The TRL notebook's multi-GPU cell (adapters/cells/hf_multi_gpu.py): accelerate.notebook_launcher with more
than one device, nothing with one.

There is no GPU here, so the launch path runs with ``DSA_NUM_PROCESSES=2`` on CPU: notebook_launcher forks 2
processes (MULTI_CPU over gloo), each builds the real SFTTrainer from the recorded arguments and trains on its
rows of every batch; the trained weights come back into the notebook's ``model``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from adapters import cells
from adapters.recipes import trl_sft

ROOT = Path(__file__).resolve().parent.parent


def test_the_trl_sft_recipe_inserts_it_before_the_trainer():
    rule = next(rule for rule in trl_sft.RECIPE.rules if rule.name == "sft-rows")
    assert rule.action == "prefix" and rule.cells[-1] == "hf_multi_gpu"
    dsa = (ROOT / "notebooks" / "dsa" / "trl_sft_dsa.py").read_text()
    assert dsa.index("DSA_NUM_PROCESSES = int(") < dsa.index("trainer = SFTTrainer(")


def test_one_device_changes_nothing(monkeypatch):
    import trl

    monkeypatch.delenv("DSA_NUM_PROCESSES", raising=False)
    original = trl.SFTTrainer
    ns: dict = {"SFTTrainer": original}
    exec(compile(cells.render_cell("hf_multi_gpu").source, "<cell hf_multi_gpu>", "exec"), ns)
    assert ns["DSA_NUM_PROCESSES"] == 1  # no CUDA on this machine
    assert trl.SFTTrainer is original and ns["SFTTrainer"] is original


LAUNCH = textwrap.dedent("""
    import json, os, sys
    sys.path.insert(0, {root!r})
    os.environ["DSA_NUM_PROCESSES"] = "2"
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from adapters import cells
    from adapters.dataset import load_splits
    from adapters.masking import mask_batch, to_trl_tokenized

    tok = AutoTokenizer.from_pretrained({model!r})
    examples, _ = mask_batch(list(load_splits({data!r})["train"])[:12], tok, max_length=320)
    rows = Dataset.from_list([to_trl_tokenized(e) for _, e in examples[:4]])
    exec(compile(cells.render_cell("hf_multi_gpu").source, "cell", "exec"), globals())
    from trl import SFTConfig, SFTTrainer  # as the notebook's next cell does
    model = AutoModelForCausalLM.from_pretrained({model!r}, dtype=torch.float32)
    before = {{k: v.clone() for k, v in model.state_dict().items()}}
    args = SFTConfig(output_dir={out!r}, max_steps=2, per_device_train_batch_size=1, learning_rate=1e-3,
                     report_to="none", save_strategy="no", logging_steps=1, bf16=False)
    trainer = SFTTrainer(model=model, args=args, train_dataset=rows, processing_class=tok)
    result = trainer.train()
    changed = sorted(k for k, v in model.state_dict().items() if not torch.equal(before[k], v))
    print("RESULT " + json.dumps({{"class": type(trainer).__name__, "steps": result.global_step,
        "losses": [e["loss"] for e in trainer.state.log_history if "loss" in e], "changed": len(changed),
        "state": trainer.state.num_processes, "type": trainer.state.distributed_type,
        "model_is_trainer_model": trainer.model is model}}))
""")


@pytest.mark.e2e  # two forked trainer processes: about a minute on 2 cores
def test_two_processes_train_through_notebook_launcher(tmp_path, tiny_model_dir):
    data = ROOT / "data" / "dipg"
    if not (data / "train.jsonl").exists():
        pytest.skip(f"{data} is absent: run `make data`")
    script = LAUNCH.format(root=str(ROOT), model=str(tiny_model_dir), data=str(data), out=str(tmp_path / "out"))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Launching training on 2" in result.stdout
    got = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert got["class"] == "LaunchedSFTTrainer"
    assert (got["state"], got["type"]) == (2, "DistributedType.MULTI_CPU")
    assert got["steps"] == 2 and len(got["losses"]) == 2 and got["losses"][1] < got["losses"][0]
    assert got["changed"] > 0 and got["model_is_trainer_model"]  # the notebook's `model` holds the trained weights
