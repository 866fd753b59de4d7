"""scripts/train_sft.py: 2 CPU processes (gloo, through ``accelerate launch``) train exactly as 1 process does.

Tolerance: the two runs compute the same per-token mean over the same global batch, row by row with
the same shapes; they differ only in the order of float additions (2 partial sums all-reduced, and
1 vs 2 intra-op threads). In float32 that is ~1e-7 relative per operation; over a few AdamW steps it
stays far below ``RTOL = 1e-4`` (measured: 5e-8), while the curve itself moves by more than 10 x RTOL
per step. The mean of per-process means (the usual mistake) gives a gradient 4 % off on these rows
of unequal lengths: see :func:`test_scaled_local_sums_give_the_global_per_token_mean_gradient`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "train_sft.py"
ACCELERATE = Path(sys.executable).parent / "accelerate"
RTOL = 1e-4
ARGS = ["--steps", "3", "--batch-size", "4", "--train-rows", "8", "--max-length", "320", "--lr", "1e-3",
        "--warmup", "0"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(command, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=600, **kwargs)


@pytest.fixture(scope="module")
def dataset() -> Path:
    path = ROOT / "data" / "dipg"
    if not (path / "train.jsonl").exists():
        pytest.skip(f"{path} is absent: run `make data`")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model_dir, dataset):
    """(one-process log, two-process log, their output folders) of the same command."""
    out = tmp_path_factory.mktemp("train_sft")
    common = ["--model", tiny_model_dir, "--dataset", dataset, *ARGS]
    one = run([sys.executable, SCRIPT, *common, "--out", out / "one"])
    assert one.returncode == 0, one.stderr[-3000:]
    # --multi_gpu is accelerate's torchrun launcher; on a machine without a GPU the script asks for
    # Accelerator(cpu=True), so the 2 processes are MULTI_CPU over gloo (accelerate's --cpu with N > 1 is mpirun).
    two = run([ACCELERATE, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", free_port(),
               SCRIPT, *common, "--out", out / "two"])
    assert two.returncode == 0, two.stderr[-3000:]
    logs = [json.loads((out / name / "train_log.json").read_text()) for name in ("one", "two")]
    return logs[0], logs[1], out, two


@pytest.mark.e2e  # two launches / three passes over 4 rows: tens of seconds on 2 cores
def test_two_gloo_processes_give_the_one_process_loss_curve(runs):
    one, two, _, _ = runs
    assert (one["num_processes"], one["distributed_type"]) == (1, "DistributedType.NO")
    assert (two["num_processes"], two["distributed_type"], two["backend"]) == (2, "DistributedType.MULTI_CPU", "gloo")
    a, b = np.array(one["losses"]), np.array(two["losses"])
    assert len(a) == len(b) == 3
    np.testing.assert_allclose(b, a, rtol=RTOL)
    # The comparison means something: the curve moves by far more than the tolerance, step to step.
    assert np.all(np.abs(np.diff(a)) > 10 * RTOL * a[1:])
    assert a[-1] < a[0]
    # The gradient too (its norm before clipping): a wrong reduction (the mean of per-process means) moves it
    # by ~1 %, which AdamW's first steps hide from the loss.
    np.testing.assert_allclose([s["grad_norm"] for s in two["steps"]], [s["grad_norm"] for s in one["steps"]],
                               rtol=RTOL)
    # The same global batch each step (tokens, targets), split into disjoint halves, one per process.
    for s1, s2 in zip(one["steps"], two["steps"]):
        assert (s1["tokens"], s1["trained_tokens"]) == (s2["tokens"], s2["trained_tokens"])
        (whole,), (first, second) = s1["rows"], s2["rows"]
        assert len(first) == len(second) == 2 and not set(first) & set(second)
        assert first + second == whole


@pytest.mark.e2e  # two launches / three passes over 4 rows: tens of seconds on 2 cores
def test_the_checkpoint_is_written_once_and_matches(runs):
    import torch
    from safetensors.torch import load_file

    _, _, out, two = runs
    # Only the main process wrote: one model, one log line per step, no staging folder left behind.
    assert sorted(p.name for p in out.iterdir()) == ["one", "two"]
    assert sorted(p.name for p in (out / "two").iterdir()) == ["model", "train_log.json"]
    assert two.stdout.count('"step": 1,') == 1
    a = load_file(out / "one" / "model" / "model.safetensors")
    b = load_file(out / "two" / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-5)
    base = load_file(ROOT / "models" / "tiny-gemma3" / "model.safetensors")
    moved = sum(not torch.equal(a[name], base[name]) for name in a if name in base)
    assert moved > 0  # the trained layers changed; the equality above is not of two untouched copies


@pytest.mark.e2e  # two launches / three passes over 4 rows: tens of seconds on 2 cores
def test_scaled_local_sums_give_the_global_per_token_mean_gradient(tiny_model_dir, tokenizer, dataset):
    """The script's reduction, without processes: DDP averages the 2 gradients of ``local sum * 2 / N``;
    that is the gradient of the global per-token mean, which the mean of per-process means is not."""
    import torch
    from transformers import AutoModelForCausalLM

    from adapters.dataset import load_splits
    from adapters.masking import mask_batch, to_trl_tokenized
    from adapters.training import masked_loss_sum, trained_tokens

    rows = list(load_splits(dataset)["train"])[:20]
    examples, _ = mask_batch(rows, tokenizer, max_length=320)
    batch = [to_trl_tokenized(ex) for _, ex in examples[:4]]
    shards = [batch[:2], batch[2:]]
    assert trained_tokens(shards[0]) != trained_tokens(shards[1])  # unequal: the two reductions differ
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    model.get_input_embeddings().weight.requires_grad_(False)  # as the script does by default
    params = [p for p in model.parameters() if p.requires_grad]

    def grads(loss_of_shards):
        model.zero_grad()
        loss = loss_of_shards()
        loss.backward()
        return loss.item(), torch.cat([p.grad.flatten() for p in params])

    def shard_sum(shard):
        total = torch.zeros(())
        for row in shard:
            total = total + masked_loss_sum(model, torch.tensor([row["input_ids"]]), row["completion_mask"])[0]
        return total

    n = trained_tokens(batch)
    global_loss, global_grad = grads(lambda: shard_sum(batch) / n)
    ddp_loss, ddp_grad = grads(lambda: sum(shard_sum(s) * 2 / n for s in shards) / 2)
    _, means_grad = grads(lambda: sum(shard_sum(s) / trained_tokens(s) for s in shards) / 2)
    assert ddp_loss == pytest.approx(global_loss, rel=1e-6)
    torch.testing.assert_close(ddp_grad, global_grad, rtol=1e-5, atol=1e-8)
    # Measured: 0 for the script's reduction, 4 % for the mean of per-process means.
    assert (means_grad - global_grad).norm() > 1e-2 * global_grad.norm()


@pytest.mark.parametrize("extra, message", [
    (["--batch-size", "0"], "--batch-size must be >= 1"),
    (["--lr", "0"], "--lr must be > 0"),
    (["--train-rows", "3", "--batch-size", "4"], "fewer than --batch-size 4"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, tiny_model_dir, dataset, extra, message):
    result = run([sys.executable, SCRIPT, "--model", tiny_model_dir, "--dataset", dataset, "--out", tmp_path / "o",
                  "--steps", "1", *extra])
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], result.stderr[-2000:]
    assert not (tmp_path / "o").exists()


def test_existing_output_and_missing_model_are_refused(tmp_path, tiny_model_dir, dataset):
    (tmp_path / "o").mkdir()
    result = run([sys.executable, SCRIPT, "--model", tiny_model_dir, "--dataset", dataset, "--out", tmp_path / "o"])
    assert result.returncode == 2 and "already exists" in result.stderr
    result = run([sys.executable, SCRIPT, "--model", tmp_path, "--dataset", dataset, "--out", tmp_path / "p"])
    assert result.returncode == 2 and "not a model folder" in result.stderr
