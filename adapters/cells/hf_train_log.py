# %%
# Training log, read back by people and by CI: the per-step losses (trainer.state.log_history) and the
# share of tokens the loss fell on in the rows the trainer really got, written to OUTPUT_DIR/train_log.json.
import json
import math
from pathlib import Path


def dsa_train_log(run_trainer, path):
    """A trainer after .train() -> {"steps", "losses", "trained_tokens", "total_tokens", "trained_share"}.

    Steps/losses: one entry per logged step (LOGGING_STEPS). Token counts are None when the trainer's
    rows carry no mask column (e.g. GRPO prompts). The dict is also written to ``path`` (sorted keys).
    """
    history = [entry for entry in run_trainer.state.log_history if "loss" in entry and "step" in entry]
    data = run_trainer.train_dataset
    columns = list(getattr(data, "column_names", None) or [])
    mask_key = next((key for key in ("completion_mask", "assistant_masks") if key in columns), None)
    trained = sum(sum(mask) for mask in data[mask_key]) if mask_key else None
    total = sum(len(ids) for ids in data["input_ids"]) if mask_key and "input_ids" in columns else None
    log = {
        "steps": [entry["step"] for entry in history],
        "losses": [float(entry["loss"]) for entry in history],
        "trained_tokens": trained,
        "total_tokens": total,
        "trained_share": (trained / total) if trained is not None and total else None,
    }
    # GRPO logs its rewards beside the loss: the mean reward and each reward function's mean per step.
    reward_keys = sorted({key for entry in history for key in entry if key == "reward" or key.startswith("rewards/")})
    if reward_keys:
        log["rewards"] = {key: [entry.get(key) for entry in history] for key in reward_keys}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(log, stream, indent=1, sort_keys=True)
    finite = all(math.isfinite(loss) for loss in log["losses"])
    print(f"logged {len(log['losses'])} steps, losses finite: {finite}; trained-token share {log['trained_share']}")
    if "rewards" in log:
        print("rewards per step:", {key: values for key, values in log["rewards"].items()})
    return log


DSA_TRAIN_LOG = dsa_train_log(trainer, Path(OUTPUT_DIR) / "train_log.json")
