"""The Tunix mesh: its shape from the devices present (kit cell tunix_mesh), and SFT on a 2-device mesh.

Two CPU devices come from ``XLA_FLAGS=--xla_force_host_platform_device_count=2`` in a subprocess of the Tunix
venv (tests/tunix_mesh_run.py). The 2-device run builds the model with its parameters sharded over the
``fsdp`` axis and trains the same 2 batches as the 1-device run (mesh (1, 1) on the first device). Tolerance
``rtol=1e-5``: float32, the same batches; only XLA's partitioned reductions (partial sums over each device's
shard, then combined) change the order of additions (measured: 8e-8).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import cells

ROOT = Path(__file__).resolve().parent.parent
TUNIX_PYTHON = ROOT / ".venv-tunix" / "bin" / "python"
RTOL = 1e-5


@pytest.fixture(scope="module")
def mesh_shape():
    ns: dict = {}
    exec(compile(cells.render_cell("tunix_mesh").source, "<cell tunix_mesh>", "exec"), ns)
    return ns["dsa_mesh_shape"]


@pytest.mark.parametrize("devices, heads, kv_heads, expected", [
    (1, 4, 1, (1, 1)),
    (2, 2, 1, (2, 1)),   # the tiny model: one KV head, so no tensor parallelism
    (8, 4, 1, (8, 1)),   # Gemma-3 1B on a TPU v5e-8
    (8, 8, 4, (2, 4)),   # Gemma-3 4B: TP over the 4 KV heads, FSDP over the rest
    (2, 8, 4, (1, 2)),   # Kaggle 2 x T4 with 4B
    (6, 8, 4, (3, 2)),
])
def test_mesh_shape_from_devices_and_heads(mesh_shape, monkeypatch, devices, heads, kv_heads, expected):
    monkeypatch.delenv("DSA_MESH_TP", raising=False)
    assert mesh_shape(devices, heads, kv_heads) == expected


@given(st.integers(1, 64), st.sampled_from([1, 2, 4, 8, 16]), st.sampled_from([1, 2, 4, 8]))
def test_mesh_shape_covers_every_device_and_divides_the_heads(mesh_shape, devices, heads, kv_heads):
    os.environ.pop("DSA_MESH_TP", None)
    fsdp, tp = mesh_shape(devices, heads, kv_heads)
    assert fsdp * tp == devices and heads % tp == 0 and kv_heads % tp == 0
    # The widest such tp: no larger divisor of the device count divides both head counts.
    assert not any(devices % d == 0 and heads % d == 0 and kv_heads % d == 0 for d in range(tp + 1, devices + 1))


def test_mesh_shape_tp_override_and_refusals(mesh_shape, monkeypatch):
    monkeypatch.setenv("DSA_MESH_TP", "1")
    assert mesh_shape(8, 8, 4) == (8, 1)
    monkeypatch.delenv("DSA_MESH_TP")
    assert mesh_shape(4, 8, 4, tp=2) == (2, 2)
    for bad in (dict(n_devices=0), dict(n_devices=4, num_kv_heads=1, tp=2), dict(n_devices=4, tp=3)):
        with pytest.raises(ValueError):
            mesh_shape(**{"num_heads": 8, "num_kv_heads": 4, **bad})


def test_the_dsa_tunix_notebook_derives_its_mesh():
    source = (ROOT / "notebooks" / "dsa" / "tunix_gemma3_sft_grpo_dsa.py").read_text()
    assert "def dsa_mesh_shape(" in source
    assert "MESH_SHAPE = dsa_mesh_shape(len(jax.devices()), model_config.num_heads, model_config.num_kv_heads)" in source
    assert source.index("def dsa_mesh_shape(") < source.index("mesh = jax.make_mesh(MESH_SHAPE")


def run_mesh(devices: int, model: Path, data: Path) -> dict:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("DSA_MESH_TP", None)
    result = subprocess.run([str(TUNIX_PYTHON), str(ROOT / "tests" / "tunix_mesh_run.py"), str(model), str(data),
                             "--devices", str(devices), "--steps", "2"],
                            capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))[7:])


@pytest.mark.e2e  # two Tunix runs (jax start, compile): about a minute each on 2 cores
def test_tunix_sft_on_a_two_device_mesh_matches_one_device(tiny_model_dir):
    if not TUNIX_PYTHON.exists():
        pytest.skip(f"{TUNIX_PYTHON} is absent: run `make env-tunix`")
    data = ROOT / "data" / "dipg"
    if not (data / "train.jsonl").exists():
        pytest.skip(f"{data} is absent: run `make data`")
    one, two = run_mesh(1, tiny_model_dir, data), run_mesh(2, tiny_model_dir, data)
    assert (one["devices"], one["mesh_shape"]) == (1, [1, 1])
    assert (two["devices"], two["mesh_shape"], two["platform"]) == (2, [2, 1], "cpu")
    # Parameters really are sharded over the 2 devices: the big matrices hold 2 distinct shards.
    big = [name for name in two["sharded"] if name.endswith(("input_embedding", "q_einsum/w", "gate_proj/kernel"))]
    assert big and all(two["sharded"][name] == 2 for name in big)
    assert all(count == 1 for count in one["sharded"].values())
    a, b = np.array(one["losses"]), np.array(two["losses"])
    assert len(a) == len(b) == 2 and np.all(np.isfinite(a))
    np.testing.assert_allclose(b, a, rtol=RTOL)
    assert abs(a[1] - a[0]) > 100 * RTOL * a[0]  # it trained: the curve moves far beyond the tolerance
