"""configs/accelerate/fsdp_gemma3.yaml, read by accelerate's own loaders: the config file, the launch command's
validation, the environment its launcher would set, and the FSDP plugin built from that environment."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "accelerate" / "fsdp_gemma3.yaml"


@pytest.fixture(scope="module")
def launch_env():
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    args = launch_command_parser().parse_args(
        ["--config_file", str(CONFIG), "--num_processes", "4", str(ROOT / "scripts" / "train_sft.py")])
    args, _, _ = _validate_launch_command(args)
    assert args.use_fsdp and args.num_processes == 4 and args.mixed_precision == "bf16"
    return prepare_multi_gpu_env(args)


def test_the_config_file_is_an_fsdp2_cluster_config():
    from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
    from accelerate.utils import DistributedType

    config = load_config_from_file(str(CONFIG))
    assert isinstance(config, ClusterConfig)
    assert config.distributed_type == DistributedType.FSDP and config.num_machines == 1 and not config.use_cpu
    assert config.fsdp_config["fsdp_version"] == 2
    assert config.fsdp_config["fsdp_transformer_layer_cls_to_wrap"] == "Gemma3DecoderLayer"


def test_the_launcher_environment_builds_the_fsdp_plugin(launch_env):
    from accelerate.utils import FullyShardedDataParallelPlugin, patch_environment
    from torch.distributed.fsdp import StateDictType

    assert launch_env["ACCELERATE_USE_FSDP"] == "true" and launch_env["FSDP_VERSION"] == "2"
    fsdp_env = {k: v for k, v in launch_env.items() if k.startswith(("FSDP_", "ACCELERATE_"))}
    with patch_environment(**fsdp_env):
        plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True
    assert plugin.transformer_cls_names_to_wrap == ["Gemma3DecoderLayer"]
    assert plugin.state_dict_type == StateDictType.FULL_STATE_DICT and plugin.cpu_ram_efficient_loading


def test_the_wrapped_layer_class_is_gemma3s_decoder_layer(tiny_model_dir):
    """accelerate wraps modules by class name and refuses a name the model lacks: the name must be real."""
    import torch
    from accelerate.utils.dataclasses import get_module_class_from_name
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    layer = get_module_class_from_name(model, "Gemma3DecoderLayer")
    assert layer is not None
    assert sum(isinstance(m, layer) for m in model.modules()) == model.config.num_hidden_layers
