# %%
# GRPO log, read back by people and by CI: one entry per optimiser step of the GRPO trainer that just ran
# (trainer.state.log_history rows that carry a reward), written to OUTPUT_DIR/grpo_log.json.
import json
import math
from pathlib import Path


def dsa_grpo_log(run_trainer, path):
    """A GRPO trainer after .train() -> {"steps", "rewards", "losses", "reward_std"} (also written to ``path``)."""
    history = [entry for entry in run_trainer.state.log_history if "reward" in entry and "step" in entry]
    log = {
        "steps": [entry["step"] for entry in history],
        "rewards": [float(entry["reward"]) for entry in history],
        "reward_std": [float(entry.get("reward_std", float("nan"))) for entry in history],
        "losses": [float(entry.get("loss", float("nan"))) for entry in history],
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(log, stream, indent=1, sort_keys=True)
    finite = all(math.isfinite(r) for r in log["rewards"])
    print(f"GRPO: logged {len(log['steps'])} steps, rewards finite: {finite}, mean rewards {log['rewards']}")
    return log


DSA_GRPO_LOG = dsa_grpo_log(trainer, Path(OUTPUT_DIR) / "grpo_log.json")
