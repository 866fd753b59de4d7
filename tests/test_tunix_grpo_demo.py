"""The Tunix GRPO demo family (grpo_demo <= v0.1.3, grpo_gemma on main): its repairs on small snippets of
what those notebooks do, and its kit cells (GRPO batches, GRPO training log) executed against the kit with
small fakes for grain and the Tunix learner. The real notebooks run end to end in tests/test_real_notebooks.py.
"""

from __future__ import annotations

import ast
import json
import sys
import types
from pathlib import Path

import pytest

from adapters import cells
from adapters.recipes import tunix_grpo_demo_repairs as repairs

ROOT = Path(__file__).resolve().parents[1]
SMALL_DATASET = ROOT / "tests" / "fixtures" / "eval" / "dataset"


def fix(repair, source: str, code: str | None = None) -> str:
    code = source if code is None else code
    assert repair.applies(source, code), f"{repair.name} should apply"
    fixed = repair.apply(source, code)
    ast.parse(fixed)
    assert not repair.applies(fixed, code.replace(source, fixed)), f"{repair.name} is not idempotent"
    return fixed


# --------------------------------------------------------------------------------------------- repairs


def test_mesh_list_and_device_count_fall_back_without_a_tpu():
    demo = 'MESH = [(1, 4), ("fsdp", "tp")]\n'
    code = demo + "mesh = jax.make_mesh(*MESH)\n"
    assert fix(repairs.MESH_LIST_REPAIR, demo, code) == (
        'MESH = [((1, 4) if DSA_HAS_TPU else (len(__import__("jax").devices()), 1)), ("fsdp", "tp")]\n')
    gemma = ("NUM_TPUS = len(jax.devices())\nif NUM_TPUS == 8:\n  MESH_COUNTS = (1, 4)\n"
             "elif NUM_TPUS == 1:\n  MESH_COUNTS = (1, 1)\nelse:\n  raise ValueError('no')\n"
             'MESH = [\n    MESH_COUNTS,\n    ("fsdp", "tp"),\n]\n')
    code = "import jax\n" + gemma + "mesh = jax.make_mesh(*MESH, axis_types=(jax.sharding.AxisType.Auto,) * 2)\n"
    fixed = fix(repairs.DEVICE_COUNT_REPAIR, gemma, code)
    fixed = fix(repairs.MESH_LIST_REPAIR, fixed, code.replace(gemma, fixed))
    for has_tpu, devices, expected in ((False, 2, [(2, 1), ("fsdp", "tp")]), (True, 8, [(1, 4), ("fsdp", "tp")])):
        ns = {"DSA_HAS_TPU": has_tpu, "jax": types.SimpleNamespace(devices=lambda n=devices: [0] * n)}
        exec(fixed, ns)
        assert ns["MESH"] == expected
    # a notebook without a starred make_mesh is left alone
    assert not repairs.MESH_LIST_REPAIR.applies(demo, demo)


def test_starred_make_mesh_gets_auto_axes():
    fixed = fix(repairs.STARRED_MESH_AXES_REPAIR, "  mesh = jax.make_mesh(*MESH)\n".strip())
    assert fixed == "mesh = jax.make_mesh(*MESH, axis_types=(jax.sharding.AxisType.Auto,) * len(MESH[1]))"


GEMMA2_LOADER = '''def get_gemma_ref_model(ckpt_path):
  mesh = jax.make_mesh(*MESH)
  model_config = gemma_lib.ModelConfig.gemma2_2b()
  abs_gemma = nnx.eval_shape(lambda: gemma_lib.Transformer(model_config, rngs=nnx.Rngs(params=0)))
  restored_params = ocp.StandardCheckpointer().restore(ckpt_path, target=nnx.state(abs_gemma))
  graph_def, _ = nnx.split(abs_gemma)
  gemma = nnx.merge(graph_def, restored_params)
  return gemma, mesh, model_config


def get_lora_model(base_model, mesh):
  return base_model
'''


def test_gemma2_loader_function_loads_gemma3_safetensors():
    fixed = fix(repairs.GEMMA2_LOADER_REPAIR, GEMMA2_LOADER)
    assert "gemma2_2b" not in fixed and "restore(" not in fixed
    assert "create_model_from_safe_tensors(local_model_path, model_config, mesh)" in fixed
    assert "dsa_tunix_model_config(dsa_gemma3_lib.ModelConfig.gemma3_1b_it(), local_model_path)" in fixed
    assert "return gemma, mesh, model_config" in fixed and "def get_lora_model(base_model, mesh):" in fixed


def test_gemma2_top_level_build_becomes_gemma3():
    cell = ('params = params_lib.load_and_format_params(os.path.join(kaggle_ckpt_path, "gemma2-2b-it"))\n'
            "model_config = gemma_lib.TransformerConfig.gemma2_2b()\n"
            "mesh = jax.make_mesh(*MESH)\n"
            'ref_model = gemma_lib.Transformer.from_params(params, version="2-2b-it")\n')
    fixed = fix(repairs.GEMMA2_STATEMENTS_REPAIR, cell)
    assert "load_and_format_params(" not in fixed.replace("...load_and_format_params(...)", "")
    assert "ref_model = dsa_gemma3_safetensors.create_model_from_safe_tensors(local_model_path, model_config, mesh)" in fixed
    assert fixed.startswith("from tunix.models.gemma3 import model as dsa_gemma3_lib\n")


def test_preset_chosen_by_model_name_accepts_any_folder():
    cell = ('model_config = None\nif "gemma-3-270m" in MODEL_ID:\n  model_config = gemma_lib.ModelConfig.gemma3_270m()\n'
            'elif "gemma-3-1b" in MODEL_ID:\n  model_config = gemma_lib.ModelConfig.gemma3_1b_it()\n'
            'else:\n  raise ValueError(f"Unknown model id: {MODEL_ID}")\n')
    fixed = fix(repairs.PRESET_CHAIN_REPAIR, cell)
    ns = {"MODEL_ID": "/work/models/tiny-gemma3",
          "gemma_lib": types.SimpleNamespace(ModelConfig=types.SimpleNamespace(gemma3_270m=lambda: "270m",
                                                                              gemma3_1b_it=lambda: "1b"))}
    exec(fixed, ns)
    assert ns["model_config"] == "1b"


def test_download_resolves_model_id_and_keeps_the_variable():
    hf = "local_model_path = snapshot_download(\n    repo_id=MODEL_ID, ignore_patterns=ignore_patterns\n)\n"
    assert fix(repairs.DOWNLOAD_REPAIR, hf) == "local_model_path = dsa_resolve_model(MODEL_ID)\n"
    kaggle = 'kaggle_ckpt_path = kagglehub.model_download(\n    f"{model_path[model_family]}{model_version}"\n)\n'
    assert fix(repairs.DOWNLOAD_REPAIR, kaggle) == "kaggle_ckpt_path = dsa_resolve_model(MODEL_ID)\n"
    assert not repairs.DOWNLOAD_REPAIR.applies("from huggingface_hub import snapshot_download\n", "")


def test_tunix_main_api_and_rollout_stops():
    cell = "grpo_trainer = GRPOLearner(\n    rl_engine=rl_engine,\n    algo_config=grpo_config,\n)\n"
    assert "rl_cluster=rl_engine," in fix(repairs.RL_ENGINE_KEYWORD_REPAIR, cell)
    rollout = "cfg = base_rollout.RolloutConfig(\n    max_tokens_to_generate=8,\n    top_k=TOP_K,\n)\n"
    fixed = fix(repairs.ROLLOUT_STOP_REPAIR, rollout)
    call = ast.parse(fixed).body[0].value
    assert [k.arg for k in call.keywords] == ["max_tokens_to_generate", "top_k", "eos_tokens"]
    assert not repairs.ROLLOUT_STOP_REPAIR.applies("RolloutConfig(eos_tokens=EOS_TOKENS)", "")


def test_colab_paths_and_model_named_export_go_to_output_dir():
    cell = ('CKPT_DIR = "/tmp/content/ckpts/"\nlog = MetricsLoggerOptions(log_dir="/content/tb/grpo")\n'
            'other = f"/tmp/content/{MODEL_ID}-lora"\n')
    fixed = fix(repairs.COLAB_PATHS_REPAIR, cell)
    ns = {"os": __import__("os"), "OUTPUT_DIR": "out", "MODEL_ID": "m", "MetricsLoggerOptions": dict}
    exec(fixed, ns)
    assert ns["CKPT_DIR"] == __import__("os").path.abspath("out/ckpts/")
    assert ns["log"]["log_dir"].endswith("/out/tb/grpo")
    assert ns["other"] == "/tmp/content/m-lora"  # an f-string (Colab-only branch) is left alone
    export = fix(repairs.MODEL_ID_DIR_REPAIR, 'output_dir = f"./{MODEL_ID}-lora"\n')
    ns = {"os": __import__("os"), "OUTPUT_DIR": "out", "MODEL_ID": "/work/models/tiny-gemma3/"}
    exec(export, ns)
    assert ns["output_dir"] == "out/tiny-gemma3-lora"


def test_wandb_is_optional(monkeypatch):
    # Calls in any form (a one-line `if ...: wandb.init()` too, seen in a newer grpo_gemma) do nothing without wandb.
    cell = ("if True:\n  import wandb\n  wandb.login(key='k')\nif not USE_COLAB: wandb.init()\n"
            "run = wandb.init(project='p')\n")
    fixed = repairs.WANDB_OPTIONAL_REPAIR.apply(cell, cell)
    assert "except ImportError:" in fixed
    assert not repairs.WANDB_OPTIONAL_REPAIR.applies(fixed, fixed)
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    namespace = {"USE_COLAB": False}
    exec(compile(fixed.replace("!pip", "#"), "<cell>", "exec"), namespace)
    assert namespace["run"] is None


def test_grpo_train_log_after_the_learner_trains():
    code = "grpo_trainer = GRPOLearner(rl_cluster=c)\n"
    cell = "with mesh:\n  grpo_trainer.train(dataset)\n"
    fixed = fix(repairs.GRPO_TRAIN_LOG_REPAIR, cell, code + cell)
    assert fixed.endswith('DSA_GRPO_LOG = dsa_tunix_grpo_train_log(grpo_trainer, Path(OUTPUT_DIR) / "grpo_log.json")\n')


# ------------------------------------------------------------------------------------------ kit cells


class _MapDataset(list):
    @classmethod
    def source(cls, records):
        return cls(records)

    def shuffle(self, seed):
        return self

    def repeat(self, times):
        return _MapDataset(list(self) * times)

    def batch(self, size, drop_remainder=False):
        stop = len(self) - len(self) % size if drop_remainder else len(self)
        return _MapDataset(self[i : i + size] for i in range(0, stop, size))


@pytest.fixture
def notebook(tmp_path, monkeypatch):
    if not SMALL_DATASET.is_dir():
        pytest.skip(f"{SMALL_DATASET} is absent")
    monkeypatch.setenv("DSA_HEADLESS", "1")
    grain = types.ModuleType("grain")
    grain.MapDataset = _MapDataset
    monkeypatch.setitem(sys.modules, "grain", grain)
    module = types.ModuleType("dsa_notebook")
    monkeypatch.setitem(sys.modules, "dsa_notebook", module)
    ns = module.__dict__

    def run(name, values=None):
        exec(compile(cells.render_cell(name, values=values).source, f"<cell {name}>", "exec"), ns)

    run("parameters", {"DATASET_ID": str(SMALL_DATASET), "OUTPUT_DIR": str(tmp_path / "out"), "MAX_STEPS": 5})
    run("headless")
    exec(compile(cells.build_core_source(), "<cell dsa_core>", "exec"), ns)
    for name in ("dipg_tags", "dipg_data"):
        run(name)
    ns["BATCH_SIZE"] = 1
    run("tunix_grpo_data")
    ns["run"] = run
    return ns


def test_grpo_batches_cover_max_steps(notebook):
    notebook["run"]("tunix_grpo_batches")
    train = notebook["train_dataset"]
    assert len(train) >= notebook["MAX_STEPS"] > len(notebook["dsa_train_rows"])  # repeated to reach MAX_STEPS
    assert notebook["dataset"] is train and notebook["val_dataset"] is None
    assert {"prompts", "question", "context", "answer"} <= set(train[0][0])
    assert len(notebook["test_dataset"]) == len(notebook["dsa_eval_rows"])


def test_grpo_train_log_written(notebook, tmp_path):
    notebook["run"]("tunix_rewards")
    notebook["run"]("tunix_grpo_log")
    notebook["run"]("tunix_grpo_train_log")
    strict = notebook["DSA_REWARD_FNS"][0]
    strict(prompts=["p"], completions=["x"], answer=["a"])

    class History:
        def get_metric_history(self, prefix, name, mode):
            return {("actor", "loss"): [0.5, 0.25], ("rewards", "score/mean"): [-1.0, 0.0]}[(prefix, name)]

    cluster = types.SimpleNamespace(_rl_metrics_logger=History(), actor_trainer=types.SimpleNamespace(train_steps=2))
    log = notebook["dsa_tunix_grpo_train_log"](types.SimpleNamespace(rl_cluster=cluster), tmp_path / "grpo_log.json")
    assert log["grpo_steps"] == 2 and log["steps"] == [1, 2] and log["losses"] == [0.5, 0.25]
    assert json.loads((tmp_path / "grpo_log.json").read_text())["rewards"] == [-1.0, 0.0]
    assert list(log["reward_fns"]) == [strict.__name__]
