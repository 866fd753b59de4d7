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


# Hardware present, found without importing torch or jax (Unsloth must be imported before torch).
# Hardware fallbacks in repaired cells read these: on a GPU/TPU the notebook runs as its authors wrote it.
DSA_HAS_CUDA = os.environ.get("CUDA_VISIBLE_DEVICES", "x") != "" and (
    os.path.exists("/dev/nvidia0") or os.path.exists("/proc/driver/nvidia/version")
)
DSA_HAS_TPU = any(k in os.environ for k in ("TPU_NAME", "COLAB_TPU_ADDR", "TPU_ACCELERATOR_TYPE")) or bool(
    __import__("glob").glob("/dev/accel[0-9]*") or __import__("glob").glob("/dev/vfio/[0-9]*")
)


def _dsa_cuda_bf16():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout.split()
        return bool(out) and all(float(cap) >= 8.0 for cap in out)
    except (OSError, ValueError, subprocess.SubprocessError):
        return False


# bf16 where the device has it: TPUs, and NVIDIA GPUs from Ampere (compute capability 8.0) on.
DSA_HAS_BF16 = DSA_HAS_TPU or (DSA_HAS_CUDA and _dsa_cuda_bf16())
# A prepared environment (CI, a local kernel) is never changed by this notebook's install cells.
DSA_SKIP_INSTALL = os.environ.get("DSA_SKIP_INSTALL", "0") == "1"
# Packages that only work on (or only make sense with) a GPU/TPU, and those that would replace the
# prepared torch/jax: never installed on a machine without that hardware / outside Colab and Kaggle.
_DSA_GPU_ONLY = {"vllm", "bitsandbytes", "flash-attn", "flash_attn", "xformers", "triton", "deepspeed",
                 "liger-kernel", "liger_kernel", "libtpu", "libtpu-nightly", "cut-cross-entropy", "causal-conv1d",
                 "mamba-ssm", "cupy", "tensorrt"}
_DSA_VALUE_OPTIONS = {"-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-f", "--find-links",
                      "-i", "--index-url", "--extra-index-url", "-t", "--target", "--prefix", "--python"}
_DSA_FRAMEWORK = {"torch", "torchvision", "torchaudio", "torchao", "jax", "jaxlib", "pip", "uv"}


def _dsa_requirement_name(spec):
    """The distribution a pip argument names: ``vllm==0.8``, ``"jax[tpu]"``, ``git+https://…/tunix`` -> name."""
    import re

    spec = spec.strip().strip("'\"")
    if spec.startswith("git+") or "://" in spec:
        egg = re.search(r"#egg=([A-Za-z0-9._-]+)", spec)
        name = egg.group(1) if egg else spec.rstrip("/").split("/")[-1].split("@")[0]
        return re.sub(r"\.git$", "", name)
    match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    return match.group(1) if match else None


def _dsa_installed(name):
    """Whether distribution ``name`` is installed (any version) or importable under that name."""
    import importlib.metadata
    import importlib.util

    try:
        importlib.metadata.version(name)
        return True
    except importlib.metadata.PackageNotFoundError:
        pass
    module = name.replace("-", "_").lower()
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _dsa_install_plan(words):
    """(to_install, skipped as [(spec, why)]) for the requirement words of one pip command line."""
    install, skipped = [], []
    for spec in words:
        name = _dsa_requirement_name(spec)
        key = (name or "").lower().replace("_", "-")
        hardware_only = key in _DSA_GPU_ONLY or "[tpu]" in spec or "[cuda" in spec or key.startswith("nvidia-")
        if name is None:
            skipped.append((spec, "not a requirement this helper understands"))
        elif hardware_only and not (DSA_HAS_CUDA or DSA_HAS_TPU):
            skipped.append((spec, "GPU/TPU-only package, no GPU/TPU here"))
        elif key in _DSA_FRAMEWORK:
            skipped.append((spec, "the prepared torch/jax/pip are never replaced"))
        elif _dsa_installed(name):
            skipped.append((spec, "already installed"))
        else:
            install.append(spec)
    return install, skipped


def dsa_pip_install(args, tool="pip", action="install"):
    """``!pip install ARGS`` (or ``uv pip``, or ``uninstall``) made safe for a prepared environment.

    On Colab and Kaggle the base notebook's own command runs as written, and a failure raises (a failing
    ``!pip`` would not stop the notebook). Elsewhere, or with DSA_SKIP_INSTALL=1: nothing is uninstalled,
    nothing already installed is reinstalled or upgraded, GPU/TPU-only packages are skipped without that
    hardware, torch/jax are never replaced; what is left (a missing light package) is installed with the
    installed torch/jax versions as constraints — or only listed, with DSA_SKIP_INSTALL=1.
    """
    try:
        words = shlex.split(args, comments=True)  # a trailing "# ..." is a shell comment, not a package
    except ValueError:  # e.g. an unclosed quote: the base's shell failed on it too, hidden by its %%capture
        if (IN_COLAB or IN_KAGGLE) and not DSA_SKIP_INSTALL:
            runner = "uv pip" if tool == "uv" else f"{shlex.quote(sys.executable)} -m pip"
            if subprocess.run(f"{runner} {action} {args}", shell=True).returncode:
                print(f"warning: pip {action} {args} failed, as it did in the base notebook")
            return
        print(f"skipped pip {action} {args}: not valid shell words (the base notebook's line is broken)")
        return
    if (IN_COLAB or IN_KAGGLE) and not DSA_SKIP_INSTALL:
        command = ["uv", "pip", action, *words] if tool == "uv" else [sys.executable, "-m", "pip", action, *words]
        subprocess.run(command, check=True)
        return
    if action != "install":
        print(f"prepared environment: skipped pip {action} {args}")
        return
    specs, options, index = [], [], 0
    while index < len(words):
        word = words[index]
        if word.split("=")[0] in _DSA_VALUE_OPTIONS and "=" not in word:
            options.append(word)
            index += 2  # the option's value is not a requirement
            continue
        (options if word.startswith("-") else specs).append(word)
        index += 1
    if any(o.split("=")[0] in ("-r", "--requirement", "-e", "--editable") for o in options):
        print(f"prepared environment: skipped pip install {args} (requirement files and editable installs "
              "are left to Colab/Kaggle)")
        return
    install, skipped = _dsa_install_plan(specs)
    for spec, why in skipped:
        print(f"skipped {spec}: {why}")
    if not install:
        return
    if DSA_SKIP_INSTALL:
        print("DSA_SKIP_INSTALL=1: not installing " + " ".join(install) + " (missing here)")
        return
    import importlib.metadata
    import tempfile

    pins = []
    for dist in ("torch", "jax", "jaxlib"):
        try:
            pins.append(f"{dist}=={importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as constraints:
        constraints.write("\n".join(pins) + "\n")
    keep = [o for o in options if o in ("-q", "-qq", "-qqq", "--quiet", "--no-deps")]
    subprocess.run([sys.executable, "-m", "pip", "install", *keep, "-c", constraints.name, *install], check=True)
