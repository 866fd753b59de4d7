"""Tunix SFT steps on a device mesh, as the DSA Tunix notebook runs them; prints one JSON line.

    XLA_FLAGS=--xla_force_host_platform_device_count=2 .venv-tunix/bin/python tests/tunix_mesh_run.py \\
        MODEL_DIR DATASET_DIR --devices 2 --steps 2

Run by tests/test_tunix_mesh.py in the Tunix venv. The model is built sharded on the mesh
(``params_safetensors.create_model_from_safe_tensors``, as in the notebook), the mesh shape comes from the
kit's cell (``adapters/cells/tunix_mesh.py``: ``dsa_mesh_shape``), the batches from the kit's masking
(``tunix_batch``), and PeftTrainer trains ``--steps`` steps; its per-step losses are collected by a
training hook. Output: ``{"devices", "mesh_shape", "losses", "sharded": {param path: number of distinct
shards}, "platform"}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def model_config_from_hf(path, gemma3_lib, param_dtype):
    """A tunix ModelConfig from a Gemma-3 text checkpoint's config.json (the DSA Tunix notebook's helper)."""
    hf = json.load(open(os.path.join(path, "config.json")))
    rope = hf.get("rope_parameters") or {}
    return gemma3_lib.ModelConfig(
        num_layers=hf["num_hidden_layers"], num_embed=hf["vocab_size"], embed_dim=hf["hidden_size"],
        hidden_dim=hf["intermediate_size"], num_heads=hf["num_attention_heads"], head_dim=hf["head_dim"],
        num_kv_heads=hf["num_key_value_heads"], sliding_window_size=hf["sliding_window"],
        local_base_frequency=int(rope.get("sliding_attention", {}).get("rope_theta", 10_000)),
        global_base_frequency=int(rope.get("full_attention", {}).get("rope_theta", 1_000_000)),
        param_dtype=param_dtype,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("dataset")
    parser.add_argument("--devices", type=int, required=True, help="use the first N devices")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=320)
    args = parser.parse_args()

    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx
    from transformers import AutoTokenizer
    from tunix.models.gemma3 import model as gemma3_lib
    from tunix.models.gemma3 import params_safetensors as params_safetensors_lib
    from tunix.sft import hooks as tunix_hooks
    from tunix.sft import peft_trainer
    from tunix.sft import utils as sft_utils

    from adapters.cells import render_cell
    from adapters.chat import PAD_ID
    from adapters.dataset import load_splits
    from adapters.masking import mask_batch, tunix_batch

    cell: dict = {}
    exec(compile(render_cell("tunix_mesh").source, "<cell tunix_mesh>", "exec"), cell)
    devices = jax.devices()[: args.devices]
    assert len(devices) == args.devices, f"{len(jax.devices())} devices visible, {args.devices} asked"
    config = model_config_from_hf(args.model, gemma3_lib, jnp.float32)
    shape = cell["dsa_mesh_shape"](len(devices), config.num_heads, config.num_kv_heads)
    mesh = jax.make_mesh(shape, ("fsdp", "tp"), axis_types=(jax.sharding.AxisType.Auto,) * 2, devices=devices)
    with mesh:
        model = params_safetensors_lib.create_model_from_safe_tensors(args.model, config, mesh, dtype=jnp.float32)

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    rows = list(load_splits(args.dataset)["train"])[:20]
    examples = [e for _, e in mask_batch(rows, tokenizer, args.max_length)[0]]
    need = args.steps * args.batch_size
    assert len(examples) >= need, f"{len(examples)} rows fit, {need} needed"
    batches = []
    for step in range(args.steps):
        batch = tunix_batch(examples[step * args.batch_size:(step + 1) * args.batch_size], args.max_length)
        batches.append(peft_trainer.TrainingInput(input_tokens=batch["input_tokens"], input_mask=batch["input_mask"]))

    class Losses(tunix_hooks.TrainingHooks):
        def __init__(self):
            self.losses = []

        def on_train_start(self, train_ctx):
            pass

        def on_train_end(self, train_ctx):
            pass

        def on_train_step_start(self, train_ctx):
            pass

        def on_train_step_end(self, train_ctx, train_step, train_loss, step_time=None):
            self.losses.append(float(train_loss))

        def on_eval_step_start(self, train_ctx):
            pass

        def on_eval_step_end(self, train_ctx, eval_loss):
            pass

    def gen_model_input_fn(x):
        pad_mask = x.input_tokens != PAD_ID
        return {"input_tokens": x.input_tokens, "input_mask": x.input_mask,
                "positions": sft_utils.build_positions_from_mask(pad_mask),
                "attention_mask": sft_utils.make_causal_attn_mask(pad_mask)}

    hooks = Losses()
    config_t = peft_trainer.TrainingConfig(eval_every_n_steps=args.steps + 1, max_steps=args.steps)
    trainer = peft_trainer.PeftTrainer(model, optax.adamw(1e-3), config_t).with_gen_model_input_fn(gen_model_input_fn)
    with mesh:
        trainer.with_training_hooks(hooks)
        trainer.train(iter(batches))

    sharded = {}
    for path, value in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        array = value.value if hasattr(value, "value") else value
        key = "/".join(str(p) for p in path)
        sharded[key] = len({str(shard.index) for shard in array.addressable_shards})
    print("RESULT " + json.dumps({"devices": len(devices), "mesh_shape": list(shape), "losses": hooks.losses,
                                  "sharded": sharded, "platform": devices[0].platform}), flush=True)


if __name__ == "__main__":
    main()
