"""Tunix/TPU repairs (adapters/recipes/tunix_repairs.py) on small cells, and the Kaggle DSA notebook's adaptation.

Each repair is checked where its defect is present, absent, and on its own output (idempotent); hardware
fallbacks must name themselves ("hardware fallback: ...") and keep the authors' code for a TPU/GPU.
"""

from __future__ import annotations

import ast
import re

import pytest

from adapters.notebook_io import read_notebook
from adapters.notebook_runs import NO_REAL_NOTEBOOKS, real_notebooks_dir
from adapters.patcher import KIT_KEY, adapt
from adapters.recipes import tunix_repairs as tr
from adapters.recipes.common import parameter_owner_repairs
from adapters.recipes.shared import GRPO_IMPORTS_REPAIR


def _run(repair, source, code=None):
    code = source if code is None else code
    assert repair.applies(source, code)
    fixed = repair.apply(source, code)
    assert tr._parse(fixed) is not None  # parses (shell lines read as pass)
    assert not repair.applies(fixed, code.replace(source, fixed)), "repair is not idempotent"
    return fixed


def test_make_mesh_gets_auto_axes():
    fixed = _run(tr.MESH_AXES_REPAIR, "mesh = jax.make_mesh(MESH_SHAPE, ('fsdp', 'tp'))\n")
    assert "axis_types=(jax.sharding.AxisType.Auto,) * len(('fsdp', 'tp'))" in fixed
    assert not tr.MESH_AXES_REPAIR.applies("jax.make_mesh(s, n, axis_types=t)", "")


def test_tpu_mesh_shape_falls_back_to_the_devices():
    code = "import jax\nMESH_SHAPE = (1, 4)\nmesh = jax.make_mesh(MESH_SHAPE, ('fsdp', 'tp'))\n"
    fixed = _run(tr.MESH_SHAPE_REPAIR, "MESH_SHAPE = (1, 4)\n", code)
    assert fixed.strip() == "MESH_SHAPE = ((1, 4) if DSA_HAS_TPU else (len(jax.devices()), 1))"
    assert tr.MESH_SHAPE_REPAIR.reason.startswith("hardware fallback:")
    # a tuple that is not a mesh shape is left alone
    assert not tr.MESH_SHAPE_REPAIR.applies("SIZE = (1, 4)\n", code + "SIZE = (1, 4)\n")
    for flag in (True, False):
        value = eval(fixed.split("=", 1)[1], {"DSA_HAS_TPU": flag, "jax": type("J", (), {"devices": lambda: [0]})})
        assert value == ((1, 4) if flag else (1, 1))


def test_tpu_and_gpu_flags_are_set_only_with_the_hardware():
    source = ("import os\nos.environ['XLA_FLAGS'] = (\n    '--xla_gpu_triton_gemm_any=True '\n)\n"
              "os.environ['JAX_COMPILATION_CACHE_DIR'] = '/tmp/jax_cache'\n"
              "os.environ['LIBTPU_INIT_ARGS'] = '--xla_enable_async_all_gather=true'\n"
              "!pip install -q jax\n"
              'os.environ.setdefault("JAX_PLATFORMS", "tpu,cpu")\n')
    fixed = _run(tr.TPU_FLAGS_REPAIR, source)
    assert "if DSA_HAS_TPU or DSA_HAS_CUDA:" in fixed
    assert fixed.count("if DSA_HAS_TPU:") == 2
    assert "\nos.environ['JAX_COMPILATION_CACHE_DIR']" in fixed  # not a TPU flag: unchanged
    for has_tpu in (True, False):
        env = {}
        namespace = {"DSA_HAS_TPU": has_tpu, "DSA_HAS_CUDA": False,
                     "os": type("O", (), {"environ": env})}
        exec(fixed.replace("!pip install -q jax", "pass").replace("import os\n", ""), namespace)
        assert ("LIBTPU_INIT_ARGS" in env) is has_tpu and ("JAX_PLATFORMS" in env) is has_tpu


def test_memory_stats_none_on_cpu():
    source = ("def show_hbm_usage():\n    for d in devices():\n        stats = d.memory_stats()\n"
              "        used = stats['bytes_in_use']\n        print(used)\n")
    fixed = _run(tr.MEMORY_STATS_REPAIR, source)
    namespace = {"devices": lambda: [type("D", (), {"memory_stats": lambda self: None})()]}
    exec(fixed, namespace)
    namespace["show_hbm_usage"]()  # no TypeError on a CPU device


def test_kaggle_working_paths_outside_kaggle():
    source = 'CKPT_DIR = "/kaggle/working/grpo_ckpts"\nlog = f"/kaggle/working/{x}"\nROOT = "/kaggle/working"\n'
    fixed = _run(tr.KAGGLE_WORKING_REPAIR, source)
    namespace = {"IN_KAGGLE": False, "os": __import__("os"), "x": 1}
    exec(fixed.replace('log = f"/kaggle/working/{x}"\n', ""), namespace)
    assert namespace["CKPT_DIR"] == namespace["os"].getcwd() + "/grpo_ckpts"
    assert 'f"/kaggle/working/{x}"' in fixed  # f-strings are left alone


def test_model_config_tokenizer_and_policy_alias():
    source = ('model_config = gemma_lib.ModelConfig.gemma3_1b_it()\n'
              'gemma3_model = lib.create_model_from_safe_tensors(\n    local_model_path, model_config, mesh,\n)\n'
              'tokenizer = tokenizer_lib.Tokenizer(tokenizer_path=f"{local_model_path}/tokenizer.model")\n')
    fixed = _run(tr.MODEL_CONFIG_REPAIR, source)
    assert "dsa_tunix_model_config(gemma_lib.ModelConfig.gemma3_1b_it(), local_model_path)" in fixed
    fixed = _run(tr.TOKENIZER_REPAIR, fixed)
    assert "tokenizer = dsa_tunix_tokenizer(local_model_path)" in fixed
    fixed = _run(tr.POLICY_ALIAS_REPAIR, fixed, fixed)
    assert fixed.split("\n")[4].startswith("gemma3 = gemma3_model")
    # a notebook that already calls its model gemma3 needs no alias
    assert not tr.POLICY_ALIAS_REPAIR.applies("gemma3 = lib.create_model_from_safe_tensors(p, c)\n",
                                             "gemma3 = lib.create_model_from_safe_tensors(p, c)\n")


def test_grpo_settings_follow_the_parameters_cell():
    source = "MAX_STEPS = 1500  # GRPO\nNUM_GENERATIONS = 2\nTOTAL_GENERATION_STEPS = 384\nWARMUP = int(0.1 * MAX_STEPS)\n"
    fixed = _run(tr.GRPO_SETTINGS_REPAIR, source)
    assert "MAX_STEPS: int = GRPO_MAX_STEPS" in fixed and "TOTAL_GENERATION_STEPS = MAX_NEW_TOKENS" in fixed
    assert re.search(r"^# NUM_GENERATIONS is set in the parameters cell", fixed, re.M)
    # the parameters cell's owner repairs leave the GRPO stage's MAX_STEPS alone
    assert not any(r.applies(fixed, fixed) for r in parameter_owner_repairs() if r.name == "owned_MAX_STEPS")
    # an SFT settings cell (no GRPO settings) keeps MAX_STEPS for the owner repair
    assert not tr.GRPO_SETTINGS_REPAIR.applies("MAX_STEPS = 3500\n", "")


def test_batch_size_alias():
    fixed = _run(tr.BATCH_ALIAS_REPAIR, "TRAIN_MICRO_BATCH_SIZE = 2 \nX = 1\n")
    namespace = {}
    exec(fixed, namespace)
    assert namespace["BATCH_SIZE"] == 2


def test_math_tags_and_prompt_defer_to_dipg():
    source = ('import sympy as sp\nREASONING_START = "<reasoning>"\nANSWER_END = "</answer>"\nPLAN = "Plan:"\n'
              'SYSTEM_PROMPT = f"""You are a careful math tutor {REASONING_START}""".strip()\n'
              'TEMPLATE = """<start_of_turn>user\n{system_prompt}\n\n{question}<end_of_turn>\n"""\n')
    fixed = _run(tr.DIPG_TAGS_REPAIR, source)
    namespace = {"THINK_OPEN": "<think>", "ANSWER_CLOSE": "</answer>", "SYSTEM_PROMPT": "DIPG", "sp": None}
    exec(fixed.replace("import sympy as sp\n", ""), namespace)
    assert namespace["REASONING_START"] == "<think>" and namespace["SYSTEM_PROMPT"] == "DIPG"
    assert "TEMPLATE" not in namespace and namespace["PLAN"] == "Plan:"


def test_training_cells_write_their_logs():
    code = "trainer = PeftTrainer(model=m)\ngrpo_trainer = GRPOLearner(rl_cluster=c)\n"
    sft = _run(tr.SFT_LOG_REPAIR, "start = 1\nwith mesh:\n    trainer.train(train_ds=a, eval_ds=b)\nend = 2\n", code)
    lines = sft.split("\n")
    assert lines[1] == "trainer.with_training_hooks(DSA_SFT_HOOKS)  # each step's loss -> train_log.json"
    assert lines[4].startswith("DSA_TRAIN_LOG = dsa_tunix_train_log(")
    grpo = _run(tr.GRPO_LOG_REPAIR, "with mesh:\n    grpo_trainer.train(train_dataset, val_dataset)\n", code)
    assert grpo.rstrip().endswith('dsa_tunix_grpo_train_log(grpo_trainer, Path(OUTPUT_DIR) / "grpo_log.json")')
    assert not tr.SFT_LOG_REPAIR.applies("grpo_trainer.train(x)\n", code)


def test_aliased_import_does_not_count_as_the_name():
    code = "from tunix.sft import metrics_logger as tmetrics\nopts = metrics_logger.MetricsLoggerOptions()\n"
    source = "opts = metrics_logger.MetricsLoggerOptions()\n"
    assert GRPO_IMPORTS_REPAIR.applies(source, code)
    assert "from tunix.sft import metrics_logger\n" in GRPO_IMPORTS_REPAIR.apply(source, code)
    # the import line itself is not a use
    assert not GRPO_IMPORTS_REPAIR.applies("from tunix.sft import metrics_logger as tmetrics\n", code)


# ------------------------------------------------------------------------ the real Kaggle notebook

KAGGLE = "kaggle_dsa_sft_grpo_nolora_tunix.ipynb"


@pytest.fixture(scope="module")
def kaggle():
    folder = real_notebooks_dir()
    if folder is None or not (folder / KAGGLE).is_file():
        pytest.skip(f"{NO_REAL_NOTEBOOKS}: {KAGGLE}")
    return adapt(read_notebook(folder / KAGGLE))


def _kept(result):
    return [c.source for c in result.nb.cells if c.cell_type == "code" and KIT_KEY not in c.metadata]


def test_kaggle_keeps_its_grpo_imports_cell_with_dipg_tags(kaggle):
    config = next(s for s in _kept(kaggle) if "import functools" in s and "import optax" in s)
    assert "REASONING_START = THINK_OPEN" in config
    assert not re.search(r"^(SYSTEM_PROMPT|TEMPLATE)\s*=", config, re.M)
    assert "math tutor" not in "\n".join(_kept(kaggle))


def test_kaggle_dsa_cast_cells_become_the_kits(kaggle):
    kept = "\n".join(_kept(kaggle))
    for gone in ("def extract_final_number", "def cast_style_scores", "def reward_format_exact",
                 "def build_sampler", "def evaluate_dataset", "evaluate_dataset(", "get_majority_vote"):
        assert gone not in kept
    kit = [c.metadata[KIT_KEY]["cell"] for c in kaggle.nb.cells if KIT_KEY in c.metadata]
    for name in ("tunix_rewards", "evaluate", "evaluate_rerun", "tunix_train_log", "tunix_grpo_log", "model_path"):
        assert name in kit
    assert kit.index("evaluate") < kit.index("tunix_rewards") < kit.index("evaluate_rerun")


def test_kaggle_grpo_cell_repaired(kaggle):
    cell = next(s for s in _kept(kaggle) if "GRPOLearner(" in s)
    for line in ("from tunix.sft import metrics_logger", "from tunix.rl import rl_cluster as rl_cluster_lib",
                 "from tunix.rl.grpo.grpo_learner import GRPOLearner", "from tunix.rl.rollout import base_rollout"):
        assert line in cell
    assert "reward_fns=DSA_REWARD_FNS" in cell and "algo_config=grpo_config" in cell
    kept = "\n".join(_kept(kaggle))
    assert "gemma3_1b_it()" in kept and "list(STOP_TOKEN_IDS)" in kept
    assert not re.search(r"^\s*[^#\s].*\bkagglehub\.", kept, re.M)  # only comments still name it


def test_kaggle_hardware_fallbacks_are_reported(kaggle):
    fallbacks = " | ".join(what for _, what in kaggle.reasons_starting("hardware fallback:"))
    for what in ("TPU mesh shape", "LIBTPU_INIT_ARGS", "memory_stats"):
        assert what in fallbacks
