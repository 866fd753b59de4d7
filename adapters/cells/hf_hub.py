# %%
# Hub and tracker helpers for a notebook that may run offline: uploads only with a token and the hub
# reachable, experiment trackers only where they import, and a hub id made of the author's account and
# a folder this notebook saved ("user/my-model") read from that folder when it exists.
import importlib.util
import os


def dsa_hub_offline():
    """Whether the Hugging Face hub is switched off for this run (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE)."""
    flags = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    return any(os.environ.get(name, "0").lower() in ("1", "true", "yes") for name in flags)


def dsa_can_push():
    """True where an upload can work: the hub is on and a token is set (environment, secrets or login)."""
    if dsa_hub_offline():
        print("hub offline (HF_HUB_OFFLINE): upload skipped")
        return False
    token = dsa_secret("HF_TOKEN")
    if not token:
        try:
            from huggingface_hub import get_token

            token = get_token()
        except Exception:
            token = None
    if not token:
        print("no HF token: hub upload skipped")
    return bool(token)


_DSA_TRACKER_MODULES = {"trackio": "trackio", "wandb": "wandb", "tensorboard": "tensorboard", "mlflow": "mlflow",
                        "comet_ml": "comet_ml", "clearml": "clearml", "neptune": "neptune", "dvclive": "dvclive"}
_DSA_HUB_TRACKERS = ("trackio",)  # logs to a hub Space when given one


def dsa_report_to(report_to):
    """``report_to`` with the trackers that cannot run here dropped ("none" when none is left)."""
    wanted = [report_to] if isinstance(report_to, str) else list(report_to)
    kept = []
    for tracker in wanted:
        module = _DSA_TRACKER_MODULES.get(tracker, tracker)
        if tracker in ("none", "all") or importlib.util.find_spec(module) is None:
            continue
        if tracker in _DSA_HUB_TRACKERS and dsa_hub_offline():
            continue
        kept.append(tracker)
    dropped = [t for t in wanted if t not in kept and t != "none"]
    if dropped:
        print(f"report_to: {', '.join(dropped)} not available here; logging to {', '.join(kept) or 'none'}")
    if not kept:
        return "none"
    return kept[0] if isinstance(report_to, str) else kept


def dsa_local_first(repo_id):
    """``"user/folder"`` -> ``"folder"`` when this notebook saved that folder, else the hub id unchanged."""
    local = str(repo_id).split("/", 1)[-1]
    if os.path.isdir(local):
        return local
    if os.path.isdir(str(repo_id)):
        return str(repo_id)
    return repo_id
