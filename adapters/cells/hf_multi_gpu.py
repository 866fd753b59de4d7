# %%
# More than one GPU (Kaggle 2xT4): the SFT trainer is built and trained inside accelerate's notebook_launcher,
# one process per GPU, each on its own rows of every batch (data-parallel: the same masked rows and loss).
# No GPU may be touched before the launch, so the next cell's SFTTrainer(...) only records its arguments and
# .train() builds the real trainer in the launched processes; the trained weights and log come back here.
# With one device this cell changes nothing. DSA_NUM_PROCESSES (environment) overrides the GPU count.
import dataclasses
import json
import os
import types
from pathlib import Path

import torch

DSA_NUM_PROCESSES = int(os.environ.get("DSA_NUM_PROCESSES") or (torch.cuda.device_count() if torch.cuda.is_available() else 1))


def _dsa_launched_train(trainer_class, args, kwargs, out):
    """In each launched process: the real trainer from the recorded arguments, trained, saved to ``out``."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(True)  # the notebook's one-process state, inherited through fork
    if not torch.cuda.is_available():
        os.environ["ACCELERATE_USE_CPU"] = "true"  # CPU processes (tests): gloo between them
    kwargs = dict(kwargs)
    if kwargs.get("args") is not None:
        kwargs["args"] = dataclasses.replace(kwargs["args"])  # its device set-up redone in this process
    trainer = trainer_class(*args, **kwargs)
    result = trainer.train()
    trainer.save_model(out)  # every process calls it; the main one writes
    if trainer.accelerator.is_main_process:
        state = {"log_history": trainer.state.log_history, "global_step": trainer.state.global_step,
                 "training_loss": result.training_loss, "num_processes": trainer.accelerator.num_processes,
                 "distributed_type": str(trainer.accelerator.distributed_type)}
        Path(out, "dsa_launch_state.json").write_text(json.dumps(state, indent=1, sort_keys=True))


def dsa_launched(trainer_class, num_processes):
    """``trainer_class`` -> a class whose ``.train()`` runs the real one in ``num_processes`` processes."""

    class DSALaunchedTrainer:
        def __init__(self, *args, **kwargs):
            self._dsa_call = (args, kwargs)
            self.args = kwargs.get("args")
            self.model = kwargs.get("model", args[0] if args else None)
            self.train_dataset = kwargs.get("train_dataset")
            self.processing_class = kwargs.get("processing_class")
            self.state = None

        def train(self, *unused, **unused_kwargs):
            from accelerate import notebook_launcher
            from transformers import AutoModelForCausalLM
            from transformers.trainer_utils import TrainOutput

            out = Path(self.args.output_dir) / "dsa-launched"
            notebook_launcher(_dsa_launched_train, args=(trainer_class, *self._dsa_call, str(out)),
                              num_processes=num_processes)
            state = json.loads((out / "dsa_launch_state.json").read_text())
            self.state = types.SimpleNamespace(**state)
            base = self.model if hasattr(self.model, "state_dict") else AutoModelForCausalLM.from_pretrained(self.model)
            if (out / "adapter_config.json").exists():  # LoRA: the adapter goes onto the notebook's model
                from peft import PeftModel

                self.model = PeftModel.from_pretrained(base, str(out), is_trainable=True)
            else:
                trained = AutoModelForCausalLM.from_pretrained(str(out))
                base.load_state_dict(trained.state_dict())  # the notebook's `model` is the trained one
                self.model = base
            print(f"trained in {state['num_processes']} processes ({state['distributed_type']}), "
                  f"{state['global_step']} steps, loss {state['training_loss']:.4f}")
            return TrainOutput(state["global_step"], state["training_loss"], {})

    DSALaunchedTrainer.__name__ = DSALaunchedTrainer.__qualname__ = f"Launched{trainer_class.__name__}"
    return DSALaunchedTrainer


if DSA_NUM_PROCESSES > 1:
    import trl

    if not getattr(trl.SFTTrainer, "_dsa_launched", False):
        trl.SFTTrainer = dsa_launched(trl.SFTTrainer, DSA_NUM_PROCESSES)  # what `from trl import SFTTrainer` gets
        trl.SFTTrainer._dsa_launched = True
    if "SFTTrainer" in globals():  # imported by an earlier cell: that name is rebound too
        globals()["SFTTrainer"] = trl.SFTTrainer
    print(f"{DSA_NUM_PROCESSES} devices: SFTTrainer trains in {DSA_NUM_PROCESSES} processes (accelerate.notebook_launcher)")
else:
    print("one device: SFTTrainer trains in this process (no launcher)")
