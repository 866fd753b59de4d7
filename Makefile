# Two commands do all set-up on a fresh machine (README): `make demo` and `make test`.
# Everything else here is a step they depend on; each step is cached by a stamp file.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
MODELS := models
DATA := data

.PHONY: demo test test-fast env models data bench clean

env: $(VENV)/.installed

# torch==2.13.0 is the CPU wheel on this machine's disk; installing it first, alone, means no other
# package can pull a CUDA build in its place.
$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps -r requirements-nodeps.txt
	$(PY) -m ipykernel install --sys-prefix --name dsa-core --display-name "DSA core (TRL)" >/dev/null
	touch $@

models: $(MODELS)/.built
$(MODELS)/.built: env scripts/build_offline_models.py adapters/chat.py
	$(PY) scripts/build_offline_models.py --out $(MODELS)
	touch $@

data: $(DATA)/.built
$(DATA)/.built: env scripts/make_dipg_dataset.py scripts/prepare_dataset.py adapters/synthetic_dipg.py adapters/dataset.py
	$(PY) scripts/make_dipg_dataset.py --out $(DATA)/dipg_offline.jsonl --force
	$(PY) scripts/prepare_dataset.py $(DATA)/dipg_offline.jsonl --out $(DATA)/dipg --force
	touch $@

# The main job on the embedded default: offline data, offline model, no hub, no GPU.
demo: env models data
	$(PY) scripts/inspect_masks.py $(DATA)/dipg --tokenizer $(MODELS)/tiny-gemma3 --rows 2

test: env models data
	$(PY) -m pytest -q

test-fast: env
	$(PY) -m pytest -q -m "not e2e"

bench: env models data
	$(PY) benchmarks/bench_masking.py --dataset $(DATA)/dipg

clean:
	rm -rf $(MODELS) $(DATA) runs
