# %%
# Training log for Tunix SFT, read back by people and by CI: PeftTrainer hands each step's loss to its
# training hooks; the losses and the share of tokens the loss falls on (the masked rows of train_data)
# go to OUTPUT_DIR/train_log.json with the same fields as the Hugging Face families' log.
import json
import math
from pathlib import Path

from tunix.sft import hooks as dsa_tunix_hooks


class DSALossHooks(dsa_tunix_hooks.TrainingHooks):
    """Collects the step number and loss of every SFT step (PeftTrainer calls on_train_step_end)."""

    def __init__(self):
        self.steps, self.losses = [], []

    def on_train_start(self, train_ctx):
        pass

    def on_train_end(self, train_ctx):
        pass

    def on_train_step_start(self, train_ctx):
        pass

    def on_train_step_end(self, train_ctx, train_step, train_loss, step_time=None):
        self.steps.append(int(train_step))
        self.losses.append(float(train_loss))

    def on_eval_step_start(self, train_ctx):
        pass

    def on_eval_step_end(self, train_ctx, eval_loss):
        pass


def dsa_tunix_train_log(hooks, examples, path):
    """hooks (after .train()) + masked examples -> {"steps", "losses", "trained_tokens", "total_tokens",
    "trained_share"}, also written to ``path`` (sorted keys)."""
    trained = sum(example.n_trained for example in examples)
    total = sum(len(example.input_ids) for example in examples)
    log = {
        "steps": list(hooks.steps),
        "losses": list(hooks.losses),
        "trained_tokens": trained,
        "total_tokens": total,
        "trained_share": trained / total if total else None,
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(log, stream, indent=1, sort_keys=True)
    finite = all(math.isfinite(loss) for loss in log["losses"])
    print(f"logged {len(log['losses'])} steps, losses finite: {finite}; trained-token share {log['trained_share']}")
    return log


DSA_SFT_HOOKS = DSALossHooks()
