# %%
# Guarded install: a prepared environment (CI, a local kernel) is left alone; only modules that do not
# import are installed, and a failed pip raises (a failing `!pip` would not stop papermill).
import importlib.util
import subprocess
import sys

_DSA_PACKAGES = {"med_safety_eval": "openenv-dipg-safety==0.1.67"}
# The gym's scorer is installed without its server stack (FIELD_NOTES §2); it imports yaml undeclared.
_DSA_NO_DEPS = ("openenv-dipg-safety",)


def _dsa_missing(packages):
    return {module: spec for module, spec in packages.items() if importlib.util.find_spec(module) is None}


for _dsa_module, _dsa_spec in sorted(_dsa_missing(_DSA_PACKAGES).items()):
    _dsa_cmd = [sys.executable, "-m", "pip", "install", "-q", _dsa_spec]
    if any(_dsa_spec.startswith(name) for name in _DSA_NO_DEPS):
        _dsa_cmd.insert(4, "--no-deps")
    print("installing", _dsa_spec)
    subprocess.run(_dsa_cmd, check=True)
print("packages ready:", ", ".join(sorted(_DSA_PACKAGES)))
