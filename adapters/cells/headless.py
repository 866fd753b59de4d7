# %%
# Where this runs, and helpers that keep interactive steps from hanging a headless (papermill) run.
import os
import shlex
import subprocess
import sys

IN_COLAB = "google.colab" in sys.modules or any(k.startswith("COLAB_") for k in os.environ)
IN_KAGGLE = "KAGGLE_KERNEL_RUN_TYPE" in os.environ or os.path.isdir("/kaggle/working")
# Papermill and nbclient run kernels without a front end that could answer a prompt.
HEADLESS = os.environ.get("DSA_HEADLESS", "1" if not (IN_COLAB or IN_KAGGLE) else "0") == "1"


def dsa_secret(name):
    """A credential from the environment, else Colab or Kaggle secrets; None when absent (never printed)."""
    value = os.environ.get(name)
    if value:
        return value
    try:
        if IN_COLAB:
            from google.colab import userdata

            return userdata.get(name)
        if IN_KAGGLE:
            from kaggle_secrets import UserSecretsClient

            return UserSecretsClient().get_secret(name)
    except Exception:
        return None
    return None


def dsa_input(prompt="", default=""):
    """input() that answers from DSA_INPUT (or ``default``) when no one can type."""
    if HEADLESS:
        answer = os.environ.get("DSA_INPUT", default)
        print(f"{prompt}{answer}  (headless: DSA_INPUT or default)")
        return answer
    return input(prompt)


def dsa_login(service):
    """Log in to huggingface / kaggle / wandb from secrets; skip (with a note) when none is set."""
    names = {"huggingface": "HF_TOKEN", "kaggle": "KAGGLE_KEY", "wandb": "WANDB_API_KEY"}
    secret = dsa_secret(names[service])
    if not secret:
        if service == "wandb":
            os.environ.setdefault("WANDB_MODE", "offline")
        print(f"{service}: no {names[service]} set; continuing without logging in")
        return False
    if service == "huggingface":
        from huggingface_hub import login

        login(token=secret)
    elif service == "kaggle":
        os.environ["KAGGLE_KEY"] = secret
        username = dsa_secret("KAGGLE_USERNAME")
        if username:
            os.environ["KAGGLE_USERNAME"] = username
    else:
        import wandb

        wandb.login(key=secret)
    return True


def dsa_tensorboard(line):
    """Run a ``%tensorboard``/``%load_ext tensorboard`` line only where a front end can show it."""
    if HEADLESS:
        print(f"headless: skipped %{line}")
        return
    from IPython import get_ipython

    magic, _, rest = line.partition(" ")
    get_ipython().run_line_magic(magic, rest)


def _dsa_installed(spec):
    """Whether a pip requirement is already satisfied: the distribution is installed and, for an
    exact ``==`` pin, at that version (other specifiers accept any installed version)."""
    import importlib.metadata
    import re

    match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(==\s*([^,;\s]+))?", spec)
    if not match:
        return False
    try:
        installed = importlib.metadata.version(match.group(1))
    except importlib.metadata.PackageNotFoundError:
        return False
    return match.group(4) is None or installed == match.group(4)


def dsa_pip_install(args):
    """``!pip install ARGS`` made safe: skip when every requirement is installed; raise when pip fails."""
    words = shlex.split(args)
    specs = [w for w in words if not w.startswith("-")]
    if specs and all(_dsa_installed(s) for s in specs) and "--upgrade" not in words and "-U" not in words:
        print("already installed, skipped: pip install", args)
        return
    subprocess.run([sys.executable, "-m", "pip", "install", *words], check=True)
