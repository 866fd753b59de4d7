"""The notebook patcher on every base-notebook fixture: goldens, output guarantees, CLI behaviour.

Goldens live in tests/golden/notebooks and are regenerated only by
``python scripts/regen_golden_notebooks.py`` (review the diff). The DSA-core cell is compared with
:func:`adapters.cells.build_core_source` rather than byte for byte, so an edit to a core module
(masking, rewards, ...) does not make every golden stale; everything else must match exactly.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from adapters import cells
from adapters.errors import NotebookError, UnknownFamilyError
from adapters.notebook_io import blank_magics, dumps_notebook, read_notebook
from adapters.patcher import GSM8K_PATTERNS, KIT_KEY, adapt, detect_family, format_report
from adapters.recipes import RECIPES

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "notebooks"
GOLDEN = ROOT / "tests" / "golden" / "notebooks"
CLI = ROOT / "scripts" / "adapt_dsa_notebook.py"
sys.path.insert(0, str(ROOT / "scripts"))
import adapt_dsa_notebook  # noqa: E402

# fixture -> (family, nbformat_minor of the base)
EXPECTED = {
    "kaggle_dsa_tunix": ("kaggle-dsa-tunix", 5),
    "tunix_grpo_demo_gemma2": ("tunix-grpo-demo", 4),
    "tunix_grpo_gemma3": ("tunix-grpo-demo", 5),
    "unsloth_gemma3_grpo_colab": ("unsloth-gemma3-grpo", 0),
    "unsloth_gemma3_grpo_kaggle": ("unsloth-gemma3-grpo", 0),
    "unsloth_gemma3_sft": ("unsloth-gemma3-sft", 4),
    "trl_sft": ("trl-sft", 0),
    "trl_sft_full": ("trl-sft", 4),
    "trl_grpo": ("trl-grpo", 0),
}
NAMES = sorted(EXPECTED)
CORE_MARK = "<dsa core: compared with build_core_source()>"


def _fixture(name: str) -> Path:
    return FIXTURES / f"{name}.ipynb"


_CACHE: dict[str, object] = {}


def _adapted(name: str):
    if name not in _CACHE:
        _CACHE[name] = adapt(read_notebook(_fixture(name)))
    return _CACHE[name]


def _mask_core(text: str) -> tuple[str, list[str]]:
    data = json.loads(text)
    cores = []
    for cell in data["cells"]:
        if cell.get("metadata", {}).get(KIT_KEY, {}).get("cell") == cells.CORE_CELL:
            cores.append("".join(cell["source"]))
            cell["source"] = CORE_MARK
    return json.dumps(data, indent=1, sort_keys=True), cores


def test_every_fixture_has_a_golden_and_an_expectation():
    assert sorted(p.stem for p in FIXTURES.glob("*.ipynb")) == NAMES
    for name in NAMES:
        assert (GOLDEN / f"{name}.expected.ipynb").is_file(), f"run scripts/regen_golden_notebooks.py ({name})"
    # Every family has at least one fixture, and the three nbformat flavours are all covered.
    assert {family for family, _ in EXPECTED.values()} == set(RECIPES)
    assert {minor for _, minor in EXPECTED.values()} == {0, 4, 5}
    for name, (_, minor) in EXPECTED.items():
        assert json.loads(_fixture(name).read_text())["nbformat_minor"] == minor


@pytest.mark.parametrize("name", NAMES)
def test_golden(name):
    produced, produced_core = _mask_core(dumps_notebook(_adapted(name).nb))
    expected, _ = _mask_core((GOLDEN / f"{name}.expected.ipynb").read_text(encoding="utf-8"))
    assert produced == expected, f"stale golden: python scripts/regen_golden_notebooks.py ({name})"
    assert produced_core == [cells.build_core_source()]
    report = (GOLDEN / f"{name}.report.txt").read_text(encoding="utf-8")
    assert format_report(_adapted(name)) + "\n" == report


@pytest.mark.parametrize("name", NAMES)
def test_family_auto_detection(name):
    recipe, why = detect_family(read_notebook(_fixture(name)))
    assert recipe.name == EXPECTED[name][0]
    assert recipe.name in why and "found" in why


@pytest.mark.parametrize("name", NAMES)
def test_output_guarantees(name):
    result = _adapted(name)
    nb = result.nb
    # valid nbformat 4.5 with unique ids, also for 4.0/4.4 inputs
    nbformat.validate(nb)
    assert (nb.nbformat, nb.nbformat_minor) == (4, 5)
    ids = [c.id for c in nb.cells]
    assert len(ids) == len(set(ids)) and all(ids)
    # kernelspec present; base metadata (kaggle / colab / accelerator) kept
    assert nb.metadata.kernelspec["name"]
    base = json.loads(_fixture(name).read_text())
    for key in ("kaggle", "colab", "accelerator"):
        if key in base["metadata"]:
            assert nb.metadata[key] == base["metadata"][key]
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if not cell.source.lstrip().startswith("%%"):
            ast.parse(blank_magics(cell.source))  # every code cell parses
        for pattern in GSM8K_PATTERNS:
            assert not re.search(pattern, cell.source), f"cell {index} keeps {pattern}"
        if KIT_KEY in cell.metadata:  # replaced / inserted cells carry no stale outputs
            assert cell.outputs == [] and cell.execution_count is None
            continue  # the headless helpers themselves call input() only when a person is there
        assert not re.search(r"(?<![\w.])input\(", cell.source)
        assert not re.search(r"^\s*!\s*pip", cell.source, re.M), f"unguarded pip in cell {index}"
        for login in (r"kagglehub\.login\(\)", r"(?<![\w.])notebook_login\(\)", r"wandb\.login\(\)", r"^\s*%tensorboard"):
            assert not re.search(login, cell.source, re.M)
    # exactly one parameters cell, before any cell that uses its names
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    params = nb.cells[tagged[0]].source
    for knob in ("MODEL_ID", "DATASET_ID", "MAX_STEPS", "MAX_SEQ_LENGTH", "MAX_PROMPT_LENGTH", "MAX_NEW_TOKENS"):
        assert re.search(rf"^{knob} = ", params, re.M)
        first_use = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and re.search(rf"\b{knob}\b", c.source))
        assert first_use == tagged[0], f"{knob} used before the parameters cell"
    # the inserted cells are the kit's own files, verbatim apart from declared names/values
    kit_cells = {c.metadata[KIT_KEY]["cell"] for c in nb.cells if KIT_KEY in c.metadata}
    assert {"parameters", "install", "headless", "dsa_core", "dipg_tags", "dipg_data", "evaluate"} <= kit_cells


@pytest.mark.parametrize("name", NAMES)
def test_idempotent_and_deterministic(name):
    first = dumps_notebook(_adapted(name).nb)
    again = dumps_notebook(adapt(read_notebook(_fixture(name))).nb)
    assert first == again  # same input, same bytes
    rerun = adapt(nbformat.reads(first, as_version=4))
    assert dumps_notebook(rerun.nb) == first  # its own output changes nothing
    assert {row.status for row in rerun.report} == {"kept"}


def test_ids_of_old_notebooks_derive_from_content_and_position():
    nb = _adapted("trl_sft").nb
    base_ids = [c.id for c in nb.cells if KIT_KEY not in c.metadata]
    assert all(re.fullmatch(r"[0-9a-f]{12}", i) for i in base_ids)
    # a 4.5 input keeps its own ids
    kept = [c.id for c in _adapted("kaggle_dsa_tunix").nb.cells if KIT_KEY not in c.metadata]
    assert all(i.startswith("kdsa-") for i in kept)


def test_repairs_only_where_detected():
    def reasons(name):
        return " | ".join(r.reason for r in _adapted(name).report if r.status == "repaired")

    kaggle = reasons("kaggle_dsa_tunix")
    for fix in ("gemma3_1b_it()", "algo_config=", "imports added", "106", "MAX_PROMPT_LENGTH", "-> 0.1.7"):
        assert fix in kaggle
    assert "RLEngine" not in kaggle
    gemma2, gemma3 = reasons("tunix_grpo_demo_gemma2"), reasons("tunix_grpo_gemma3")
    assert "algo_config=" in gemma2 and "RLEngine" not in gemma2
    assert "-> 0.1.7" not in gemma2  # the demo installs google-tunix unpinned: nothing to bump
    assert "RLEngine" in gemma3 and "algo_config=" not in gemma3
    # the demo imports its GRPO names: nothing to add there
    assert "imports added" not in gemma2 + gemma3
    # the off-by-one mask is named where the cell is replaced
    assert any("one token late" in r.reason for r in _adapted("kaggle_dsa_tunix").report)


def test_kaggle_grpo_cell_after_repairs():
    nb = _adapted("kaggle_dsa_tunix").nb
    cell = next(c.source for c in nb.cells if "GRPOLearner(" in c.source and KIT_KEY not in c.metadata)
    assert "algo_config=grpo_config" in cell and "grpo_config=grpo_config" not in cell.replace("algo_config=grpo_config", "")
    assert "reward_fns=DSA_REWARD_FNS" in cell
    assert "eos_tokens=list(STOP_TOKEN_IDS)" in cell
    for line in ("from tunix.rl.grpo.grpo_learner import GRPOLearner", "from tunix.rl.rollout import base_rollout"):
        assert line in cell


def test_grpo_imports_added_only_for_missing_names(tmp_path):
    data = json.loads(_fixture("kaggle_dsa_tunix").read_text())
    imports = next(c for c in data["cells"] if "from tunix.sft import peft_trainer" in "".join(c["source"]))
    imports["source"] = "".join(imports["source"]) + "\nfrom tunix.sft import metrics_logger"
    path = tmp_path / "partly_imported.ipynb"
    path.write_text(json.dumps(data))
    result = adapt(read_notebook(path))
    reason = next(r.reason for r in result.report if "imports added" in r.reason)
    assert "metrics_logger" not in reason and "GRPOLearner" in reason
    cell = next(c.source for c in result.nb.cells if "GRPOLearner(" in c.source and KIT_KEY not in c.metadata)
    assert "from tunix.sft import metrics_logger" not in cell and "rl_cluster as rl_cluster_lib" in cell


def test_secret_is_reported_not_copied(capsys):
    raw = _fixture("unsloth_gemma3_grpo_colab").read_text()
    token = re.search(r"hf_[A-Za-z0-9]{30,}", raw).group(0)
    result = _adapted("unsloth_gemma3_grpo_colab")
    assert result.secrets_found and "Hugging Face token" in result.secrets_found[0]
    text = dumps_notebook(result.nb)
    assert token not in text
    assert any('environ.get("HF_TOKEN", "")' in c.source for c in result.nb.cells)
    report = format_report(result)
    assert token not in report and "Hugging Face token" in report


def test_kaggle_key_is_reported_not_copied(tmp_path):
    data = json.loads(_fixture("trl_sft").read_text())
    key = "0123456789abcdef" * 2
    data["cells"][2]["source"] = ['import os\n', f'os.environ["KAGGLE_KEY"] = "{key}"\n', "notebook_login()"]
    path = tmp_path / "kaggle_key.ipynb"
    path.write_text(json.dumps(data))
    result = adapt(read_notebook(path))
    text = dumps_notebook(result.nb)
    assert key not in text and "Kaggle API key" in format_report(result)
    assert any('environ.get("KAGGLE_KEY", "")' in c.source for c in result.nb.cells)


def test_secret_in_outputs_is_cleared(tmp_path):
    data = json.loads(_fixture("trl_sft").read_text())
    cell = next(c for c in data["cells"] if c["cell_type"] == "code" and "peft_config" in "".join(c["source"]))
    cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["token hf_" + "x" * 34 + "\n"]}]
    path = tmp_path / "leaky.ipynb"
    path.write_text(json.dumps(data))
    result = adapt(read_notebook(path))
    assert "hf_" + "x" * 34 not in dumps_notebook(result.nb)
    assert any("outputs" in r.reason for r in result.report if r.status == "repaired")


def test_model_and_dataset_ids_reach_the_parameters_cell():
    result = adapt(read_notebook(_fixture("trl_sft")), model_id="models/tiny-gemma3", dataset_id="data/dipg")
    params = next(c.source for c in result.nb.cells if "parameters" in c.metadata.get("tags", []))
    assert 'MODEL_ID = "models/tiny-gemma3"' in params and 'DATASET_ID = "data/dipg"' in params
    # a re-run keeps them without the flags
    again = adapt(result.nb)
    assert dumps_notebook(again.nb) == dumps_notebook(result.nb)


def test_unknown_family_lists_signatures(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('hello')")])
    with pytest.raises(UnknownFamilyError) as err:
        detect_family(nb)
    message = str(err.value)
    for recipe in RECIPES.values():
        assert recipe.name in message
    assert "GRPOLearner" in message and "SFTTrainer" in message
    assert err.value.exit_code == 3


def test_forced_family_that_leaves_gsm8k_is_refused():
    # The TRL SFT recipe does not know the Kaggle notebook's cells: kept cells would read GSM8K helpers the
    # recipe removed (the name contract) or GSM8K would survive; either way, no output.
    with pytest.raises(NotebookError, match="(?i)gsm8k"):
        adapt(read_notebook(_fixture("kaggle_dsa_tunix")), family="trl-sft")


# ------------------------------------------------------------------------------------------ CLI


def _run(*args):
    return subprocess.run([sys.executable, str(CLI), *map(str, args)], capture_output=True, text=True)


def test_cli_writes_default_output_and_check(tmp_path):
    base = tmp_path / "trl_sft.ipynb"
    base.write_bytes(_fixture("trl_sft").read_bytes())
    before = base.read_bytes()
    done = _run(base, "--report-json", tmp_path / "report.json")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "trl_sft.dsa.ipynb"
    assert out.read_text() == dumps_notebook(_adapted("trl_sft").nb)
    assert base.read_bytes() == before
    assert "inserted" in done.stdout and "family trl-sft" in done.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["family"] == "trl-sft" and report["counts"]["inserted"] >= 3
    # --check: up to date on its own output, 1 when the output is stale
    assert _run(out, "--check").returncode == 0
    assert _run(base, "-o", out, "--check").returncode == 0
    out.write_text(out.read_text().replace("MAX_STEPS = 100", "MAX_STEPS = 7"))
    stale = out.read_text()
    # the parameters cell keeps the user's value, so change a base cell instead
    data = json.loads(stale)
    data["cells"][-1]["source"] = ["print('edited')"]
    out.write_text(json.dumps(data))
    assert _run(base, "-o", out, "--check").returncode == 1
    assert json.loads(out.read_text())["cells"][-1]["source"] == ["print('edited')"]  # --check writes nothing


def test_cli_diff_in_place_and_refusals(tmp_path):
    base = tmp_path / "nb.ipynb"
    base.write_bytes(_fixture("unsloth_gemma3_sft").read_bytes())
    diff = _run(base, "-o", tmp_path / "x.ipynb", "--diff", "--quiet")
    assert diff.returncode == 0 and "+# DSA core" in diff.stdout and "-dataset = load_dataset(" in diff.stdout
    exists = _run(base, "-o", tmp_path / "x.ipynb")
    assert exists.returncode == 2 and exists.stderr.startswith("error:") and "exists" in exists.stderr
    same = _run(base, "-o", base)
    assert same.returncode == 2 and "--in-place" in same.stderr
    inplace = _run(base, "--in-place", "--quiet")
    assert inplace.returncode == 0
    assert base.read_text() == dumps_notebook(_adapted("unsloth_gemma3_sft").nb)
    assert _run(base, "--in-place", "--check").returncode == 0
    unknown = _run(base, "-o", tmp_path / "y.ipynb", "--family", "nope")
    assert unknown.returncode == 3 and unknown.stderr.count("\n") == 1
    assert not (tmp_path / "y.ipynb").exists()


def test_cli_help_has_an_example():
    done = _run("--help")
    assert done.returncode == 0 and "Example:" in done.stdout and "--check" in done.stdout
