"""bfloat16 only where the CPU has it: the probe, the CLIs' refusal, and generation's ``auto`` dtype.

Measured on a 2-core AMD EPYC with AVX2 alone (``benchmarks/results/precision_avx2.md``): an autocast SFT step
of the 270M took 39x as long as in float32, and greedy generation with its saved bfloat16 weights 2.6x as long. Each test sets the CPU it describes through PyTorch's
probes, so the suite means the same on any machine (eval_simple's run on saved bfloat16 weights:
``tests/test_eval_simple_cli.py``).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from adapters.errors import DSAError
from adapters.generation import generation_dtype, saved_dtype
from adapters.training import PrecisionError, cpu_has_native_bf16, require_native_precision

ROOT = Path(__file__).resolve().parent.parent
PROBES = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")


def _cpu(monkeypatch, avx512_bf16: bool, amx: bool) -> None:
    monkeypatch.setattr(torch.cpu, PROBES[0], lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, PROBES[1], lambda: amx, raising=False)


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("avx512_bf16, amx, native", [(False, False, False), (True, False, True),
                                                      (False, True, True), (True, True, True)])
def test_the_probe_follows_pytorch(monkeypatch, avx512_bf16, amx, native):
    _cpu(monkeypatch, avx512_bf16, amx)
    assert cpu_has_native_bf16() is native


@pytest.mark.parametrize("flags, native", [("fpu avx avx2 fma", False), ("avx2 avx512f avx512_bf16", True),
                                           ("avx2 amx_bf16 amx_tile", True), ("avx512f avx512bw", False)])
def test_without_pytorch_probes_the_kernel_flags_decide(monkeypatch, tmp_path, flags, native):
    for name in PROBES:
        monkeypatch.delattr(torch.cpu, name, raising=False)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert cpu_has_native_bf16(cpuinfo) is native
    # Nothing to read: the probe does not forbid what the hardware may well do.
    assert cpu_has_native_bf16(tmp_path / "absent") is True


def test_bf16_is_refused_on_a_cpu_without_bf16_hardware(monkeypatch):
    _cpu(monkeypatch, False, False)
    with pytest.raises(PrecisionError, match="use --precision fp32") as caught:
        require_native_precision("bf16")
    assert isinstance(caught.value, DSAError) and caught.value.exit_code == 2
    assert "\n" not in str(caught.value)
    require_native_precision("fp32")
    with pytest.raises(ValueError, match="precision"):
        require_native_precision("fp16")
    _cpu(monkeypatch, False, True)
    require_native_precision("bf16")


def test_the_recipe_exits_2_before_any_work(monkeypatch, tmp_path, capsys):
    recipe = _load("dsa_recipe")
    _cpu(monkeypatch, False, False)
    out = tmp_path / "out"
    assert recipe.main(["--out", str(out), "--precision", "bf16", "--phases", "data,sft"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --precision bf16 needs a CPU with AVX-512 BF16 or AMX")
    assert not out.exists()


def test_format_learning_exits_2_before_any_work(monkeypatch, tmp_path, capsys, tiny_model_dir):
    format_learning = _load("format_learning")
    _cpu(monkeypatch, False, False)
    out = tmp_path / "out"
    assert format_learning.main(["--model", str(tiny_model_dir), "--out", str(out), "--precision", "bf16",
                                 "--phases", "train"]) == 2
    assert "use --precision fp32" in capsys.readouterr().err
    assert not out.exists()


def _folder(path: Path, config: dict) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config))
    return path


def test_saved_dtype_reads_the_config_and_a_peft_adapters_base(tmp_path):
    assert saved_dtype(_folder(tmp_path / "new", {"dtype": "bfloat16"})) == "bfloat16"
    assert saved_dtype(_folder(tmp_path / "old", {"torch_dtype": "float16"})) == "float16"
    assert saved_dtype(_folder(tmp_path / "none", {})) is None
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(tmp_path / "new")}))
    assert saved_dtype(adapter) == "bfloat16"
    assert saved_dtype(tmp_path / "absent") is None


def test_auto_runs_half_weights_as_float32_only_on_a_cpu_without_bf16(monkeypatch, tmp_path):
    half = _folder(tmp_path / "half", {"dtype": "bfloat16"})
    full = _folder(tmp_path / "full", {"dtype": "float32"})
    _cpu(monkeypatch, False, False)
    assert generation_dtype(half, "auto", "cpu") == "float32"
    assert generation_dtype(full, "auto", "cpu") == "auto"
    assert generation_dtype(half, "auto", "cuda") == "auto"  # the GPU's own business
    assert generation_dtype(half, "bfloat16", "cpu") == "bfloat16"  # asked for: kept
    _cpu(monkeypatch, True, False)
    assert generation_dtype(half, "auto", "cpu") == "auto"
