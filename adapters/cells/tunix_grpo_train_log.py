# %%
# GRPO log of a GRPO-only notebook, read back by people and by CI: per learner step the policy loss and the
# mean reward (Tunix's own metrics history), and the mean of each DSA reward per scored batch (recorded by
# the cell above), written to OUTPUT_DIR/grpo_log.json ("steps", finite "rewards" per step, as every family's
# GRPO log; train_log.json is the SFT stage's, which this notebook does not have).
import json
import math
from pathlib import Path

import numpy as np


def dsa_tunix_grpo_train_log(learner, path):
    """A GRPO learner after .train() -> {"steps", "rewards", "losses", "reward_fns", "grpo_steps"}, also
    written to ``path`` (sorted keys)."""
    cluster = learner.rl_cluster
    history = getattr(cluster, "_rl_metrics_logger", None)

    def series(prefix, name):
        try:
            return [float(v) for v in np.ravel(history.get_metric_history(prefix, name, "train"))]
        except Exception:  # the metric was never logged (or Tunix renamed it)
            return []

    done = int(cluster.actor_trainer.train_steps)
    log = {
        "grpo_steps": done,
        "steps": list(range(1, done + 1)),
        "losses": series("actor", "loss"),
        "rewards": series("rewards", "score/mean"),
        "reward_fns": {name: list(values) for name, values in sorted(globals().get("DSA_GRPO_REWARDS", {}).items())},
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(log, stream, indent=1, sort_keys=True)
    finite = all(math.isfinite(x) for x in log["losses"] + log["rewards"])
    print(f"GRPO steps done: {done}; losses {log['losses']}; mean rewards {log['rewards']}; finite: {finite}")
    return log
